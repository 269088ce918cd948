# trace_overhead_bench: the seed loop untraced, under heapfragd exact and
# passive, and under a bpftrace memleak-style tracker (needs root).
add_executable(trace_overhead_bench trace_overhead.c)
target_link_libraries(trace_overhead_bench PRIVATE m)
set_target_properties(trace_overhead_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_dependencies(trace_overhead_bench seed_loop)
if(TARGET heapfragd)
	add_dependencies(trace_overhead_bench heapfragd)
endif()
