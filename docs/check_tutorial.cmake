# ctest docs_tutorial_in_sync: every ```cpp block of docs/tutorial.md must appear verbatim
# (as consecutive lines) in examples/tutorial.cpp, which is compiled and run as a test —
# so every snippet the tutorial shows compiles and runs.
#   cmake -DTUTORIAL_MD=... -DTUTORIAL_CPP=... -P check_tutorial.cmake
file(READ ${TUTORIAL_MD} md)
file(READ ${TUTORIAL_CPP} cpp)
# Indentation is not compared (the tutorial's blocks are dedented). CMake lists split on ';'
# and treat brackets specially: mask them in both texts.
foreach(var md cpp)
  string(REGEX REPLACE "\n[ ]+" "\n" ${var} "${${var}}")
  string(REPLACE ";" "@SEMI@" ${var} "${${var}}")
  string(REPLACE "[" "@LB@" ${var} "${${var}}")
  string(REPLACE "]" "@RB@" ${var} "${${var}}")
endforeach()
string(REGEX MATCHALL "```cpp\n[^`]*```" blocks "${md}")
list(LENGTH blocks count)
if(count EQUAL 0)
  message(FATAL_ERROR "${TUTORIAL_MD}: no ```cpp blocks found")
endif()
set(i 0)
foreach(block IN LISTS blocks)
  math(EXPR i "${i} + 1")
  string(REGEX REPLACE "^```cpp\n" "" body "${block}")
  string(REGEX REPLACE "```$" "" body "${body}")
  string(FIND "${cpp}" "${body}" at)
  if(at EQUAL -1)
    string(REPLACE "@SEMI@" ";" body "${body}")
    string(REPLACE "@LB@" "[" body "${body}")
    string(REPLACE "@RB@" "]" body "${body}")
    message(FATAL_ERROR "docs/tutorial.md: cpp block ${i} of ${count} is not in examples/tutorial.cpp:\n${body}")
  endif()
endforeach()
message(STATUS "docs/tutorial.md: all ${count} cpp blocks are in examples/tutorial.cpp")
