# heapfragd: the daemon.  Its own sources are the command line, the BPF
# loader and the registry of traced processes; the rest are libraries.
add_executable(heapfragd main.c options.c tracer.c registry.c)
target_include_directories(heapfragd PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(heapfragd PRIVATE heapfrag_skel hf_probe_site hf_ptm_books hf_account hf_contention hf_ptm_usdt hf_exec_gate hf_web hf_log
	PkgConfig::LIBBPF PkgConfig::LIBELF PkgConfig::ZLIB Threads::Threads)
