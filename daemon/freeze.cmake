# hf_freeze: holds a process's threads still for a moment with ptrace
# (--census-stop), invisibly to the process and its parent.
add_library(hf_freeze STATIC freeze.c)
target_include_directories(hf_freeze PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(hf_freeze PUBLIC hf_account)
