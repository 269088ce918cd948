# hf_exec_gate: -e's processes held at exec until their probes are attached (BPF).
add_library(hf_exec_gate STATIC exec_gate.c)
target_include_directories(hf_exec_gate PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
# The skeleton stays private: bpf/exec_gate.h shares its name with this
# directory's exec_gate.h, and users of the library need only the latter.
target_link_libraries(hf_exec_gate PRIVATE exec_gate_skel
	PUBLIC hf_log PkgConfig::LIBBPF PkgConfig::LIBELF)
