# hf_ptm_books: libptm's own books (ptm_stats_abi.h), read from outside the
# target with process_vm_readv: exact free chunks, arenas and lock numbers
# for libptm processes in both modes, with no probe on any allocator call.
add_library(hf_ptm_books STATIC ptm_books.c)
target_include_directories(hf_ptm_books PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}
	${PROJECT_SOURCE_DIR}/allocator/include)
target_link_libraries(hf_ptm_books PUBLIC hf_probe_site hf_log)
