# Settings for hepgnn's own tests, benchmarks and examples only: never applied to the interface target,
# so a parent project's flags stay its own.
find_program(HEPGNN_CCACHE ccache)
if(HEPGNN_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${HEPGNN_CCACHE})
endif()

find_package(OpenMP)

# Real data beside the clone (../shared/data); tests that need it skip with a message when it is absent.
set(_hepgnn_default_data "")
if(EXISTS ${PROJECT_SOURCE_DIR}/../shared/data)
  get_filename_component(_hepgnn_default_data ${PROJECT_SOURCE_DIR}/../shared/data ABSOLUTE)
endif()
set(HEPGNN_DATA_DIR "${_hepgnn_default_data}" CACHE PATH "Folder with hepgnn's real data sets (shared/data)")

add_library(hepgnn_dev INTERFACE)
target_link_libraries(hepgnn_dev INTERFACE hepgnn::hepgnn)
target_compile_options(hepgnn_dev INTERFACE -Wall -Wextra -Wpedantic -Wno-unused-parameter)
# GCC 12 reports thousands of false "may be used uninitialized" warnings from inside its own avx512fintrin.h
# (_mm512_undefined_* placeholders inlined into xsimd; a few plain "is used uninitialized" from xsimd's exp/tanh),
# which would bury real warnings.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(hepgnn_dev INTERFACE -Wno-maybe-uninitialized -Wno-uninitialized)
endif()
if(HEPGNN_NATIVE)
  target_compile_options(hepgnn_dev INTERFACE -march=native)
endif()
if(OpenMP_CXX_FOUND)
  target_link_libraries(hepgnn_dev INTERFACE OpenMP::OpenMP_CXX)
endif()
if(HEPGNN_SANITIZE)
  # GCC's -fsanitize=undefined leaves out float-cast-overflow (a double too large for an int); clang's includes it.
  set(hepgnn_sanitizers address,undefined)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    set(hepgnn_sanitizers address,undefined,float-cast-overflow)
  endif()
  target_compile_options(hepgnn_dev INTERFACE -fsanitize=${hepgnn_sanitizers} -fno-omit-frame-pointer
                                              -fno-sanitize-recover=undefined,float-cast-overflow)
  target_link_options(hepgnn_dev INTERFACE -fsanitize=${hepgnn_sanitizers})
endif()
target_compile_definitions(hepgnn_dev INTERFACE HEPGNN_DATA_DIR="${HEPGNN_DATA_DIR}"
  HEPGNN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

# The optional components (cmake/hepgnn_components.cmake): every test, benchmark and example has zlib; the targets
# that cluster with FastJet link hepgnn::fastjet themselves.
if(TARGET hepgnn::zlib)
  target_link_libraries(hepgnn_dev INTERFACE hepgnn::zlib)
endif()
set(HEPGNN_HAVE_FASTJET OFF)
if(TARGET hepgnn::fastjet)
  set(HEPGNN_HAVE_FASTJET ON)
endif()
