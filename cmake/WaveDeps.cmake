# Dependencies are found with pkg-config. A missing one stops configuration
# with the Debian package that provides it.
find_package(PkgConfig QUIET)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: install the Debian package 'pkg-config' "
                      "(apt-get install pkg-config)")
endif()

# wave_require_pkg(<VAR> <pkg-config module> <Debian package>)
# Creates the imported target PkgConfig::WAVE_DEP_<VAR>.
function(wave_require_pkg var module debian_pkg)
  pkg_check_modules(WAVE_DEP_${var} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(NOT WAVE_DEP_${var}_FOUND)
    message(FATAL_ERROR "libwave needs '${module}' (pkg-config module not found): "
                        "install the Debian package '${debian_pkg}' (apt-get install ${debian_pkg})")
  endif()
  message(STATUS "Found ${module} ${WAVE_DEP_${var}_VERSION}")
endfunction()
