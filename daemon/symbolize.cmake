# hf_symbolize: frames (object, offset, function, file, line) for return
# addresses captured in other processes, through elfutils' libdwfl.
if(NOT TARGET PkgConfig::LIBDW)
	# GLOBAL: the tests link hf_symbolize from another directory.
	pkg_check_modules(LIBDW REQUIRED IMPORTED_TARGET GLOBAL libdw)
endif()
add_library(hf_symbolize STATIC symbolize.c)
target_include_directories(hf_symbolize PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(hf_symbolize PUBLIC hf_log PRIVATE PkgConfig::LIBDW PkgConfig::LIBELF)
