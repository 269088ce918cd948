# hf_ptm_usdt: libptm's USDT probes and sampled heap profile (BPF).
add_library(hf_ptm_usdt STATIC ptm_usdt.c)
target_include_directories(hf_ptm_usdt PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
# The skeleton stays private: bpf/ptm_usdt.h shares its name with this
# directory's ptm_usdt.h, and users of the library need only the latter.
target_link_libraries(hf_ptm_usdt PRIVATE ptm_usdt_skel
	PUBLIC hf_log PkgConfig::LIBBPF PkgConfig::LIBELF)
