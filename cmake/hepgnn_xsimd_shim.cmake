# Debian 12's libxsimd-dev exports xsimd with INTERFACE_LINK_LIBRARIES "xtl" although xsimd 8 does not need xtl
# and Debian ships no xtl package; without a target of that name the linker gets "-lxtl" and fails.
# An empty imported target named xtl satisfies the reference (only when nobody defined a real one).
if(TARGET xsimd AND NOT TARGET xtl)
  get_target_property(_hepgnn_xsimd_libs xsimd INTERFACE_LINK_LIBRARIES)
  if(_hepgnn_xsimd_libs MATCHES "xtl")
    add_library(xtl INTERFACE IMPORTED)
  endif()
endif()
