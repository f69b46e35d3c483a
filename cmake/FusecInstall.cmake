# FusecInstall.cmake - what `cmake --install` puts in place:
#
#   bin/fusec                              the CLI (when tools/fusec.c exists)
#   include/fusec.h                        the one public header
#   lib/libfusec.so.0 (+ links), libfusec.a
#   lib/pkgconfig/fusec.pc                 pkg-config --cflags --libs fusec
#   lib/cmake/fusec/fusecConfig.cmake      find_package(fusec) -> fusec::fusec,
#   lib/cmake/fusec/fusecConfigVersion.cmake                     fusec::fusec_static
#   lib/cmake/fusec/fusecTargets*.cmake
#
# Both the pkg-config file and the CMake package are relocatable: they find
# the prefix from their own location, so `cmake --install BUILD --prefix P`
# works for any P, not just the CMAKE_INSTALL_PREFIX seen at configure time.

set(FUSEC_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/fusec")
set(FUSEC_PC_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")

install(TARGETS fusec_static fusec_shared
  EXPORT fusecTargets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
if(FUSEC_HAVE_CLI)
  install(TARGETS fusec RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
endif()
install(FILES "${PROJECT_SOURCE_DIR}/include/fusec.h" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

# ---- CMake package ----------------------------------------------------------
install(EXPORT fusecTargets
  NAMESPACE fusec::
  FILE fusecTargets.cmake
  DESTINATION "${FUSEC_CMAKE_DIR}")
configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/fusecConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/fusecConfig.cmake"
  INSTALL_DESTINATION "${FUSEC_CMAKE_DIR}")
# 0.x: a minor release may break the API, so only the same minor matches.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/fusecConfigVersion.cmake"
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/fusecConfig.cmake"
              "${PROJECT_BINARY_DIR}/fusecConfigVersion.cmake"
        DESTINATION "${FUSEC_CMAKE_DIR}")

# ---- pkg-config --------------------------------------------------------------
# prefix is written relative to ${pcfiledir} (pkg-config and pkgconf both
# define it) unless the install dirs were given as absolute paths.
function(fusec_pc_dir out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "\${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()
if(IS_ABSOLUTE "${FUSEC_PC_DIR}")
  set(FUSEC_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _rel "/fusec_root/${FUSEC_PC_DIR}" "/fusec_root")
  string(REGEX REPLACE "/+$" "" _rel "${_rel}")
  set(FUSEC_PC_PREFIX "\${pcfiledir}/${_rel}")
endif()
fusec_pc_dir(FUSEC_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
fusec_pc_dir(FUSEC_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
set(FUSEC_PC_LIBS_PRIVATE "-lm")
foreach(_lib IN LISTS FUSEC_BACKEND_LIBS)
  string(APPEND FUSEC_PC_LIBS_PRIVATE " ${_lib}")
endforeach()
configure_file("${PROJECT_SOURCE_DIR}/cmake/fusec.pc.in" "${PROJECT_BINARY_DIR}/fusec.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/fusec.pc" DESTINATION "${FUSEC_PC_DIR}")
