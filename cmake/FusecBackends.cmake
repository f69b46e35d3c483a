# FusecBackends.cmake - find the optional backend toolkits.
#
# FUSEC_CUDA and FUSEC_LLVM are each ON, OFF or AUTO.  ON fails the configure
# when the toolkit is missing; AUTO enables the backend where it is found, so
# that the tree builds on a machine with neither.
#
# Sets, for the library targets:
#   FUSEC_HAVE_CUDA, FUSEC_HAVE_LLVM   ON / OFF
#   FUSEC_BACKEND_DEFS                 FUSEC_HAVE_CUDA=1 / FUSEC_HAVE_LLVM=1
#   FUSEC_BACKEND_INCLUDES             toolkit include dirs
#   FUSEC_BACKEND_LIBS                 absolute library paths
#
# Libraries are kept as plain paths rather than imported targets so that the
# exported static library (whose private dependencies its users must link)
# and fusec.pc can name them without the user having to find the toolkits.

set(FUSEC_HAVE_CUDA OFF)
set(FUSEC_HAVE_LLVM OFF)
set(FUSEC_BACKEND_DEFS "")
set(FUSEC_BACKEND_INCLUDES "")
set(FUSEC_BACKEND_LIBS "")

# ON/OFF/AUTO in any spelling CMake accepts for a boolean -> ON, OFF or AUTO.
function(fusec_tristate var)
  string(TOUPPER "${${var}}" v)
  if(v STREQUAL "AUTO")
    set(r AUTO)
  elseif(v MATCHES "^(ON|YES|TRUE|Y|1)$")
    set(r ON)
  elseif(v MATCHES "^(OFF|NO|FALSE|N|0)$")
    set(r OFF)
  else()
    message(FATAL_ERROR "${var}='${${var}}': expected ON, OFF or AUTO")
  endif()
  set(${var}_MODE ${r} PARENT_SCOPE)
endfunction()
fusec_tristate(FUSEC_CUDA)
fusec_tristate(FUSEC_LLVM)

# ---- CUDA: NVRTC + Driver API ----------------------------------------------
if(NOT FUSEC_CUDA_MODE STREQUAL "OFF")
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND AND CUDA_nvrtc_LIBRARY AND CUDA_cuda_driver_LIBRARY)
    set(FUSEC_HAVE_CUDA ON)
    list(APPEND FUSEC_BACKEND_DEFS FUSEC_HAVE_CUDA=1)
    list(APPEND FUSEC_BACKEND_INCLUDES ${CUDAToolkit_INCLUDE_DIRS})
    list(APPEND FUSEC_BACKEND_LIBS "${CUDA_nvrtc_LIBRARY}" "${CUDA_cuda_driver_LIBRARY}")
    message(STATUS "fusec: CUDA backend on (CUDA ${CUDAToolkit_VERSION}, ${CUDA_nvrtc_LIBRARY})")
  elseif(FUSEC_CUDA_MODE STREQUAL "ON")
    message(FATAL_ERROR "FUSEC_CUDA=ON but no CUDA toolkit with NVRTC and the driver "
                        "library was found (set CUDAToolkit_ROOT, or FUSEC_CUDA=AUTO)")
  else()
    message(STATUS "fusec: CUDA backend off (no CUDA toolkit found)")
  endif()
endif()

# ---- LLVM 14: the C API, for the CPU JIT ------------------------------------
if(NOT FUSEC_LLVM_MODE STREQUAL "OFF")
  set(_llvm_inc "")
  set(_llvm_lib "")
  find_program(FUSEC_LLVM_CONFIG NAMES llvm-config-14 llvm-config
               HINTS /usr/lib/llvm-14/bin)
  if(FUSEC_LLVM_CONFIG)
    execute_process(COMMAND "${FUSEC_LLVM_CONFIG}" --version
                    OUTPUT_VARIABLE _llvm_ver OUTPUT_STRIP_TRAILING_WHITESPACE
                    RESULT_VARIABLE _rc ERROR_QUIET)
    if(_rc EQUAL 0 AND _llvm_ver MATCHES "^14\\.")
      execute_process(COMMAND "${FUSEC_LLVM_CONFIG}" --includedir
                      OUTPUT_VARIABLE _llvm_inc OUTPUT_STRIP_TRAILING_WHITESPACE)
      execute_process(COMMAND "${FUSEC_LLVM_CONFIG}" --link-shared --libfiles
                      OUTPUT_VARIABLE _llvm_lib OUTPUT_STRIP_TRAILING_WHITESPACE
                      RESULT_VARIABLE _rc ERROR_QUIET)
      if(NOT _rc EQUAL 0 OR NOT EXISTS "${_llvm_lib}")
        set(_llvm_lib "")
      endif()
    endif()
  endif()
  if(NOT _llvm_lib)
    find_package(LLVM 14 CONFIG QUIET HINTS /usr/lib/llvm-14/lib/cmake/llvm)
    if(LLVM_FOUND)
      set(_llvm_ver ${LLVM_PACKAGE_VERSION})
      set(_llvm_inc ${LLVM_INCLUDE_DIRS})
      find_library(FUSEC_LLVM_LIBRARY NAMES LLVM-14 LLVM HINTS ${LLVM_LIBRARY_DIRS} NO_DEFAULT_PATH)
      if(FUSEC_LLVM_LIBRARY)
        set(_llvm_lib "${FUSEC_LLVM_LIBRARY}")
      endif()
    endif()
  endif()
  if(_llvm_lib AND _llvm_inc)
    set(FUSEC_HAVE_LLVM ON)
    list(APPEND FUSEC_BACKEND_DEFS FUSEC_HAVE_LLVM=1)
    list(APPEND FUSEC_BACKEND_INCLUDES ${_llvm_inc})
    list(APPEND FUSEC_BACKEND_LIBS "${_llvm_lib}")
    message(STATUS "fusec: LLVM backend on (LLVM ${_llvm_ver}, ${_llvm_lib})")
  elseif(FUSEC_LLVM_MODE STREQUAL "ON")
    message(FATAL_ERROR "FUSEC_LLVM=ON but LLVM 14 (llvm-config-14 or its CMake package "
                        "with libLLVM-14.so) was not found; install llvm-14-dev, or FUSEC_LLVM=AUTO")
  else()
    message(STATUS "fusec: LLVM backend off (LLVM 14 not found)")
  endif()
endif()
