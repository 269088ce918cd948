# hf_probe_site: which ELF object gives malloc to a process, where each entry
# uprobe goes in it, and what a return address on a stack must follow.
add_library(hf_probe_site STATIC probe_site.c elf_file.c prologue.c return_address.c)
target_include_directories(hf_probe_site PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(hf_probe_site PUBLIC PkgConfig::LIBELF PkgConfig::CAPSTONE hf_log)
