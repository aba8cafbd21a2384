# hepgnn's optional parts as CMake components, the same in a build tree (add_subdirectory, FetchContent) and in an
# installed package (find_package(hepgnn COMPONENTS zlib fastjet)):
#   hepgnn::zlib     zlib for gzip files and deflate-compressed .npz/.pt entries. It defines HEPGNN_HAVE_ZLIB, which
#                    makes io/codec.hpp include io/zlib.hpp: that registers zlib for the whole program at start-up,
#                    so translation units built without the component read compressed files too.
#   hepgnn::fastjet  FastJet clustering (io/fastjet_cluster.hpp, jets::cluster_antikt_fastjet); HEPGNN_HAVE_FASTJET
#                    declares those functions.
#   hepgnn::mpi      MPI (MPI::MPI_CXX) for dist/mpi_communicator.hpp: data-parallel training over ranks. No macro:
#                    only code that includes that header needs the component.
# No library function changes its body with these macros (one definition per program, whatever each unit saw).
# Sets hepgnn_zlib_FOUND, hepgnn_fastjet_FOUND and hepgnn_mpi_FOUND; each target exists only where its library was found.
if(NOT TARGET hepgnn::zlib)
  find_package(ZLIB QUIET)
  if(ZLIB_FOUND)
    add_library(hepgnn::zlib INTERFACE IMPORTED GLOBAL)
    set_target_properties(hepgnn::zlib PROPERTIES
      INTERFACE_LINK_LIBRARIES "${ZLIB_LIBRARIES}"
      INTERFACE_INCLUDE_DIRECTORIES "${ZLIB_INCLUDE_DIRS}"
      INTERFACE_COMPILE_DEFINITIONS HEPGNN_HAVE_ZLIB=1)
  endif()
endif()
if(NOT TARGET hepgnn::fastjet)
  # FastJet ships no CMake package on Debian (fastjet-config only): find its library and headers directly.
  find_library(HEPGNN_FASTJET_LIB fastjet)
  find_path(HEPGNN_FASTJET_INCLUDE fastjet/ClusterSequence.hh)
  if(HEPGNN_FASTJET_LIB AND HEPGNN_FASTJET_INCLUDE)
    add_library(hepgnn::fastjet INTERFACE IMPORTED GLOBAL)
    set_target_properties(hepgnn::fastjet PROPERTIES
      INTERFACE_LINK_LIBRARIES "${HEPGNN_FASTJET_LIB}"
      INTERFACE_INCLUDE_DIRECTORIES "${HEPGNN_FASTJET_INCLUDE}"
      INTERFACE_COMPILE_DEFINITIONS HEPGNN_HAVE_FASTJET=1)
  endif()
endif()
if(NOT TARGET hepgnn::mpi)
  find_package(MPI QUIET COMPONENTS CXX)
  if(MPI_CXX_FOUND)
    add_library(hepgnn::mpi INTERFACE IMPORTED GLOBAL)
    set_target_properties(hepgnn::mpi PROPERTIES INTERFACE_LINK_LIBRARIES MPI::MPI_CXX)
  endif()
endif()
set(hepgnn_mpi_FOUND FALSE)
if(TARGET hepgnn::mpi)
  set(hepgnn_mpi_FOUND TRUE)
endif()
set(hepgnn_zlib_FOUND FALSE)
if(TARGET hepgnn::zlib)
  set(hepgnn_zlib_FOUND TRUE)
endif()
set(hepgnn_fastjet_FOUND FALSE)
if(TARGET hepgnn::fastjet)
  set(hepgnn_fastjet_FOUND TRUE)
endif()
