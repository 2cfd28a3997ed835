# The CUDA emulation (native/src/cuda/emu): the project's .cu kernel sources compiled as C++ for the
# CPU against the emulation's own cuda_runtime.h / cublas_v2.h / mma.h, so CI executes every CUDA
# kernel without a GPU.
#
#   libcdas_cuda_emu.so   the same backend table as libcdas_cuda.so; libcdas loads it instead when
#                         CDAS_CUDA_BACKEND=emulated is set in the environment (tests only: the
#                         "device" memory is emulated host memory from its cudaMalloc)
#   gpu_check_bench_emu   benchmarks/gpu/gpu_check_bench.cpp built against the emulation
#   cuda_emu_selftest     the emulation's own tests (deliberately broken kernels must fail)
#
# ctest label: cuda-emulated (`ctest -L cuda-emulated` runs these alone).

option(CDAS_CUDA_EMULATION "Build the CPU emulation of the CUDA kernels and its tests" ON)
if(NOT CDAS_CUDA_EMULATION)
  message(STATUS "cdas: CUDA emulation disabled (CDAS_CUDA_EMULATION=OFF)")
  return()
endif()

set(_emu_dir "${CMAKE_SOURCE_DIR}/native/src/cuda/emu")
file(GLOB _emu_cu_sources CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/native/src/cuda/*.cu")
set(_emu_wrappers)
foreach(_cu IN LISTS _emu_cu_sources)
  get_filename_component(_name "${_cu}" NAME_WE)
  set(_wrapper "${CMAKE_BINARY_DIR}/cuda_emu/${_name}.cu.cpp")
  # A one-line translation unit that compiles the .cu file itself as C++ (not a copy of it).
  file(CONFIGURE OUTPUT "${_wrapper}" CONTENT "#include \"${_cu}\"\n" @ONLY)
  list(APPEND _emu_wrappers "${_wrapper}")
  set_property(SOURCE "${_wrapper}" APPEND PROPERTY OBJECT_DEPENDS "${_cu}")
endforeach()

add_library(cdas_cuda_emu SHARED ${_emu_wrappers} "${_emu_dir}/cuda_emu.cpp")
# The emulation's headers come first, so <cuda_runtime.h> and friends resolve to them.
target_include_directories(cdas_cuda_emu PRIVATE "${_emu_dir}/include" "${CMAKE_SOURCE_DIR}/native/include"
                                                 "${CMAKE_SOURCE_DIR}/native/src")
target_compile_options(cdas_cuda_emu PRIVATE -O2 -fno-strict-aliasing -Wall -Wno-unused-function -Wno-unknown-pragmas -Wno-parentheses)
set_target_properties(cdas_cuda_emu PROPERTIES CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
target_link_libraries(cdas_cuda_emu PRIVATE Threads::Threads)
target_link_options(cdas_cuda_emu PRIVATE "-Wl,--no-undefined")

if(CDAS_BUILD_TESTS)
  add_executable(gpu_check_bench_emu "${CMAKE_SOURCE_DIR}/benchmarks/gpu/gpu_check_bench.cpp")
  target_include_directories(gpu_check_bench_emu PRIVATE "${_emu_dir}/include" "${CMAKE_SOURCE_DIR}/native/include")
  target_link_libraries(gpu_check_bench_emu PRIVATE cdas cdas_cuda_emu)
  set_target_properties(gpu_check_bench_emu PROPERTIES BUILD_RPATH "$<TARGET_FILE_DIR:cdas>;${CDAS_TORCH_LIB_DIR}")

  add_executable(cuda_emu_selftest "${CMAKE_SOURCE_DIR}/native/tests/emu/test_cuda_emu.cpp")
  target_include_directories(cuda_emu_selftest PRIVATE "${_emu_dir}/include" "${CMAKE_SOURCE_DIR}/native/include"
                                                       "${CMAKE_SOURCE_DIR}/native/src")
  target_link_libraries(cuda_emu_selftest PRIVATE cdas_cuda_emu)
  target_compile_options(cuda_emu_selftest PRIVATE -fno-strict-aliasing -Wno-unknown-pragmas -Wno-parentheses)
  set_target_properties(cuda_emu_selftest PROPERTIES BUILD_RPATH "$<TARGET_FILE_DIR:cdas_cuda_emu>")
  add_test(NAME cuda_emu_selftest COMMAND cuda_emu_selftest)
  set_tests_properties(cuda_emu_selftest PROPERTIES LABELS "cuda-emulated")

  # The deliberate bugs of tools/cuda_emu_mutations.py still apply to the kernel sources.
  find_package(Python3 COMPONENTS Interpreter QUIET)
  if(Python3_Interpreter_FOUND)
    add_test(NAME cuda_emu_mutation_targets
             COMMAND ${Python3_EXECUTABLE} "${CMAKE_SOURCE_DIR}/tools/cuda_emu_mutations.py" --check-targets)
    set_tests_properties(cuda_emu_mutation_targets PROPERTIES LABELS "cuda-emulated")
  endif()

  # Every CUDA kernel through the public ABI against the CPU context, one ctest per group so that
  # `ctest -j` spreads them over the cores.
  foreach(_group dii jsd-chunked jsd-auto misc)
    add_test(NAME cuda_emulated_${_group} COMMAND gpu_check_bench_emu --check --emulated --group ${_group})
    set_tests_properties(cuda_emulated_${_group} PROPERTIES LABELS "cuda-emulated"
                         ENVIRONMENT "CDAS_CUDA_BACKEND=emulated" TIMEOUT 900)
  endforeach()
endif()
message(STATUS "cdas: CUDA emulation -> libcdas_cuda_emu.so (ctest -L cuda-emulated)")
