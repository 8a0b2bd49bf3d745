# Shared by the benchmarks' smoke tests (cmake -P scripts).
# bench_json_lines(<var> <what> <args>...): runs ${BENCH} <args>, fails
# with its output when it fails, and sets <var> to the list of its
# non-empty output lines (one JSON object each; a ';' in a line, which a
# CMake list cannot hold, becomes ',') and <var>_text to the whole output.
function(bench_json_lines var what)
  execute_process(COMMAND ${BENCH} ${ARGN}
    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${err}\n${out}")
  endif()
  string(REPLACE ";" "," out "${out}")
  string(REPLACE "\n" ";" lines "${out}")
  list(REMOVE_ITEM lines "")
  set(${var} "${lines}" PARENT_SCOPE)
  set(${var}_text "${out}" PARENT_SCOPE)
endfunction()
