# The smoke test of wave-bench-agent --record-sets --json: it succeeds,
# every event got its decision (else it fails), and the per-event costs
# measured in the sets are there and plausible: the agent loop's busy
# time off and on (its bursts counted: more than 0 ns an event, bursts of
# at least one event) and the writers' CPU per event recorded. Asserts no
# timing beyond "more than zero".
#   cmake -DBENCH=path/to/wave-bench-agent -P bench_agent_sets_check.cmake
cmake_minimum_required(VERSION 3.20) # the project's policies (CMP0007, CMP0054)
include(${CMAKE_CURRENT_LIST_DIR}/bench_json_lines.cmake)
bench_json_lines(lines "wave-bench-agent --record-sets"
  --quick --record-sets 2 --writer-on-agent --json)
set(found 0)
foreach(line IN LISTS lines)
  string(JSON m ERROR_VARIABLE no_m GET "${line}" measurement)
  if(no_m OR NOT m STREQUAL "trace_record_cost_per_event")
    continue()
  endif()
  set(found 1)
  foreach(key agent_busy_off_ns agent_busy_on_ns writer_ns)
    string(JSON v GET "${line}" ${key})
    if(NOT v GREATER 0)
      message(FATAL_ERROR "${key} is ${v}, not more than 0: ${line}")
    endif()
  endforeach()
  foreach(key burst_off burst_on)
    string(JSON v GET "${line}" ${key})
    if(v LESS 1)
      message(FATAL_ERROR "${key} is ${v}: a burst of less than one event: ${line}")
    endif()
  endforeach()
endforeach()
if(NOT found)
  message(FATAL_ERROR "no trace_record_cost_per_event line:\n${lines_text}")
endif()
