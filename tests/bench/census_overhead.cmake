# census_overhead_bench: what the heap census costs a busy process with a
# ~400 MB fragmented heap (census_busy), untraced and under heapfragd -m
# passive with the default census budget and with a census every second, and
# the census's time per 100 MB against a bare process_vm_readv of as many
# bytes (needs root).
add_executable(census_busy census_busy.c)
target_compile_options(census_busy PRIVATE -O2 -fno-builtin -fno-sanitize=all)
target_link_libraries(census_busy PRIVATE hf_workload)
set_target_properties(census_busy PROPERTIES
	RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/workloads)
add_executable(census_overhead_bench census_overhead.c)
target_include_directories(census_overhead_bench PRIVATE ${PROJECT_SOURCE_DIR}/tests/lib)
target_link_libraries(census_overhead_bench PRIVATE m)
set_target_properties(census_overhead_bench PROPERTIES
	RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_dependencies(census_overhead_bench census_busy)
if(TARGET heapfragd)
	add_dependencies(census_overhead_bench heapfragd)
endif()
