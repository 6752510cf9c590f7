# Installs the already-built library into a temporary prefix, then configures, builds and runs
# tests/consumer against that prefix (find_package(FlashAttentionSm90)). Any failing step fails the
# test. Run by CTest (test ConsumerFindPackage) as
#   cmake -DFLASH_BUILD_DIR=<build> -DFLASH_CONSUMER_SOURCE_DIR=<tests/consumer>
#         -DFLASH_WORK_DIR=<scratch dir> [-DFLASH_CONFIG=<config>] [-DFLASH_CXX_COMPILER=<c++>]
#         [-DFLASH_GENERATOR=<generator>] [-DFLASH_CUDA_TOOLKIT_ROOT=<dir>] -P run_consumer_test.cmake
cmake_minimum_required(VERSION 3.25)

foreach(required FLASH_BUILD_DIR FLASH_CONSUMER_SOURCE_DIR FLASH_WORK_DIR)
  if(NOT DEFINED ${required} OR "${${required}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer_test.cmake: -D${required}=... is required")
  endif()
endforeach()
if(NOT DEFINED FLASH_CONFIG OR "${FLASH_CONFIG}" STREQUAL "")
  set(FLASH_CONFIG Release)
endif()

set(prefix "${FLASH_WORK_DIR}/prefix")
set(consumer_build "${FLASH_WORK_DIR}/build")
# A fresh prefix and build every run, so that nothing from an earlier run can satisfy this one.
file(REMOVE_RECURSE "${prefix}" "${consumer_build}")

function(run_step name)
  message(STATUS "[consumer] ${name}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "[consumer] ${name} failed (${result})")
  endif()
endfunction()

# The library must be up to date before it is installed (a no-op after `cmake --build`).
run_step("build flash_attention"
  "${CMAKE_COMMAND}" --build "${FLASH_BUILD_DIR}" --target flash_attention --config "${FLASH_CONFIG}")
run_step("install" "${CMAKE_COMMAND}" --install "${FLASH_BUILD_DIR}" --prefix "${prefix}" --config "${FLASH_CONFIG}")

set(configure_args -S "${FLASH_CONSUMER_SOURCE_DIR}" -B "${consumer_build}"
    "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_BUILD_TYPE=${FLASH_CONFIG}")
if(DEFINED FLASH_GENERATOR AND NOT "${FLASH_GENERATOR}" STREQUAL "")
  list(APPEND configure_args -G "${FLASH_GENERATOR}")
endif()
if(DEFINED FLASH_CXX_COMPILER AND NOT "${FLASH_CXX_COMPILER}" STREQUAL "")
  list(APPEND configure_args "-DCMAKE_CXX_COMPILER=${FLASH_CXX_COMPILER}")
endif()
if(DEFINED FLASH_CUDA_TOOLKIT_ROOT AND NOT "${FLASH_CUDA_TOOLKIT_ROOT}" STREQUAL "")
  list(APPEND configure_args "-DCUDAToolkit_ROOT=${FLASH_CUDA_TOOLKIT_ROOT}")
endif()
run_step("configure consumer" "${CMAKE_COMMAND}" ${configure_args})
run_step("build consumer" "${CMAKE_COMMAND}" --build "${consumer_build}" --config "${FLASH_CONFIG}")

# Single-config generators put the program in the build directory, multi-config ones in <config>/.
set(program "${consumer_build}/flash_consumer")
if(NOT EXISTS "${program}")
  set(program "${consumer_build}/${FLASH_CONFIG}/flash_consumer")
endif()
run_step("run consumer" "${program}")
message(STATUS "[consumer] passed: installed package found, linked and run from ${prefix}")
