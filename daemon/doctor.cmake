# hf_doctor: findings from a snapshot, a pure function (web/ serves it).
add_library(hf_doctor STATIC doctor.c)
target_include_directories(hf_doctor PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(hf_doctor PUBLIC hf_account m)
