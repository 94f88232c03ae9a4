# Every dependency comes from a Debian package; nothing is downloaded. A missing one
# stops configuration with the package to install.
function(hyperad_require pkg debian)
  find_package(${pkg} ${ARGN} QUIET)
  if(NOT ${pkg}_FOUND)
    message(FATAL_ERROR "hyperad needs ${pkg}: install it with `apt-get install ${debian}` "
                        "(or run scripts/setup.sh as root).")
  endif()
endfunction()

hyperad_require(fmt libfmt-dev)
hyperad_require(xsimd libxsimd-dev)
hyperad_require(OpenMP "g++ (its libgomp)")
hyperad_require(ZLIB zlib1g-dev)
include(GNUInstallDirs)
