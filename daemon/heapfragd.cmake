# heapfragd: the daemon.  Its own sources are the command line, the BPF
# loader, the registry of traced processes, the table of allocator rooms and
# the census thread; the rest are libraries.
add_executable(heapfragd main.c options.c tracer.c registry.c rooms.c census_worker.c sites.c)
target_include_directories(heapfragd PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(heapfragd PRIVATE heapfrag_skel hf_caps hf_probe_site hf_account hf_glibc hf_libptm hf_exec_gate hf_web hf_symbolize hf_log
	PkgConfig::LIBBPF PkgConfig::LIBELF PkgConfig::ZLIB Threads::Threads)
