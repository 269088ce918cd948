# trace_overhead_bench: the seed loop untraced, under heapfragd exact and
# passive, under a bpftrace memleak-style tracker, and under the bare traps
# of both probe placements (needs root).
add_executable(trace_overhead_bench trace_overhead.c)
target_include_directories(trace_overhead_bench PRIVATE ${PROJECT_SOURCE_DIR}/tests/lib)
target_link_libraries(trace_overhead_bench PRIVATE m hf_probe_site PkgConfig::LIBBPF)
set_target_properties(trace_overhead_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_dependencies(trace_overhead_bench seed_loop)
if(TARGET heapfragd)
	add_dependencies(trace_overhead_bench heapfragd)
endif()
