# mutate.cmake - write a planner mutant: IN with every FROM replaced by TO, into OUT.
#   cmake -DIN=sched.c -DOUT=mutant.c -DFROM=... -DTO=... -P mutate.cmake
# A FROM that is not found is an error: a mutant identical to the planner would pass the
# property test and prove nothing.
file(READ "${IN}" text)
string(FIND "${text}" "${FROM}" at)
if(at EQUAL -1)
    message(FATAL_ERROR "mutate.cmake: '${FROM}' not found in ${IN}: update the mutant")
endif()
string(REPLACE "${FROM}" "${TO}" mutated "${text}")
file(WRITE "${OUT}" "${mutated}")
