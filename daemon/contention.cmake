# hf_contention: glibc arena-lock contention (BPF) and arena discovery.
add_library(hf_contention STATIC contention.c arena_map.c)
target_include_directories(hf_contention PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
# The skeleton stays private: bpf/contention.h shares its name with this
# directory's contention.h, and users of the library need only the latter.
# hf_probe_site's prologue decoder places the entry probe on an emulated
# instruction.
target_link_libraries(hf_contention PRIVATE contention_skel hf_probe_site PkgConfig::CAPSTONE
	PUBLIC hf_log PkgConfig::LIBBPF PkgConfig::LIBELF m)

# hf_doctor: findings from a snapshot, a pure function (web/ serves it).
add_library(hf_doctor STATIC doctor.c)
target_include_directories(hf_doctor PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(hf_doctor PUBLIC hf_account m)
