# hf_caps: the capabilities heapfragd needs, checked at start-up (pure, unit-tested).
add_library(hf_caps STATIC caps.c)
target_include_directories(hf_caps PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
