# Tests of benchmarks/gpu/check-and-bench.sh's own logic (arguments, --plan, output layout, rows
# kept by a killed bench, the deadline), so the script a rare GPU visit depends on runs on every
# CI run. The emulated one runs the whole script against the CPU emulation of CUDA
# (gpu_check_bench_emu, cmake/CdasCudaEmu.cmake) and is skipped, saying why, when that is not built.
# ctest -L cuda-emulated runs them with the other emulation tests.
if(CDAS_BUILD_TESTS)
  add_test(NAME gpu_script_args
           COMMAND bash "${CMAKE_SOURCE_DIR}/benchmarks/gpu/test-check-and-bench.sh" args "${CMAKE_BINARY_DIR}")
  add_test(NAME gpu_script_emulated
           COMMAND bash "${CMAKE_SOURCE_DIR}/benchmarks/gpu/test-check-and-bench.sh" emulated "${CMAKE_BINARY_DIR}")
  set_tests_properties(gpu_script_args gpu_script_emulated PROPERTIES LABELS "cuda-emulated")
  set_tests_properties(gpu_script_args PROPERTIES TIMEOUT 120)
  set_tests_properties(gpu_script_emulated PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900)
  # The kernels-only build (CDAS_WITH_TORCH=OFF) the script makes on a GPU machine, here without CUDA.
  add_test(NAME gpu_script_no_torch_build
           COMMAND bash "${CMAKE_SOURCE_DIR}/benchmarks/gpu/test-check-and-bench.sh" no-torch "${CMAKE_BINARY_DIR}")
  set_tests_properties(gpu_script_no_torch_build PROPERTIES LABELS "gpu-script" TIMEOUT 600)
endif()
