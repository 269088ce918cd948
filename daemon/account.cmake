# The heap account: /proc parsers, the allocator's regions, derived metrics.
add_library(hf_account STATIC snapshot.c census.c account.c heap_regions.c procfs.c history.c
	cgroup.c)
target_include_directories(hf_account PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(hf_account PUBLIC hf_log m)
