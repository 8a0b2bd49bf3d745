# Our own code builds with warnings as errors, with gcc and clang alike.
function(wave_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wshadow
    -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter)
endfunction()
