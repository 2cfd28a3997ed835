# CUDA kernels -> libcdas_cuda.so, loaded at run time by libcdas (dlopen from its own directory),
# so libcdas itself never links any CUDA library and a CPU-only machine never needs one.
#
#   CDAS_CUDA=AUTO  build when nvcc is found (default)
#   CDAS_CUDA=ON    nvcc and cuBLAS are required
#   CDAS_CUDA=OFF   never
#
# cuBLAS comes from, in order: CDAS_CUBLAS_ROOT (a folder with include/cublas_v2.h and
# lib/libcublas.so*; e.g. <site-packages>/nvidia/cu13 of torch's nvidia-cublas wheel), the CUDA
# toolkit's own CUDA::cublas, ${CDAS_DEPS_DIR}/cublas, and with CDAS_FETCH_DEPS the nvidia-cublas
# wheel unpacked there by scripts/fetch-cublas.sh.

string(TOUPPER "${CDAS_CUDA}" _cdas_cuda_mode)
set(CDAS_HAVE_CUDA OFF)
if(_cdas_cuda_mode STREQUAL "OFF")
  message(STATUS "cdas: CUDA kernels disabled (CDAS_CUDA=OFF)")
  return()
endif()
if(NOT _cdas_cuda_mode MATCHES "^(AUTO|ON)$")
  message(FATAL_ERROR "cdas: CDAS_CUDA must be AUTO, ON or OFF (got '${CDAS_CUDA}')")
endif()

macro(_cdas_cuda_unavailable why)
  if(_cdas_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "cdas: CDAS_CUDA=ON but ${why}")
  endif()
  message(STATUS "cdas: CUDA kernels not built: ${why}")
  return()
endmacro()

include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER OR NOT EXISTS "${CMAKE_CUDA_COMPILER}")
  _cdas_cuda_unavailable("no nvcc found (set CMAKE_CUDA_COMPILER or put nvcc on PATH)")
endif()
# sm_80 (A100) and sm_90 (H100/H200) machine code, plus compute_90 PTX for anything newer.
# CDAS_CUDA_ARCHITECTURES narrows it (e.g. "90-real" on an H100, half the nvcc time).
set(CDAS_CUDA_ARCHITECTURES "80-real;90-real;90-virtual" CACHE STRING "CUDA architectures of libcdas_cuda.so")
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES "${CDAS_CUDA_ARCHITECTURES}")
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

# ---- cuBLAS --------------------------------------------------------------------------------------
set(CDAS_CUBLAS_ROOT "" CACHE PATH "Folder with include/cublas_v2.h and lib/libcublas.so* (empty: toolkit, then ${CDAS_DEPS_DIR}/cublas)")
function(_cdas_cublas_from_root root out_inc out_lib out_lt)
  find_path(_inc cublas_v2.h PATHS "${root}/include" NO_DEFAULT_PATH NO_CACHE)
  find_library(_lib NAMES cublas libcublas.so.13 libcublas.so.12 PATHS "${root}/lib" "${root}/lib64" NO_DEFAULT_PATH NO_CACHE)
  find_library(_lt NAMES cublasLt libcublasLt.so.13 libcublasLt.so.12 PATHS "${root}/lib" "${root}/lib64" NO_DEFAULT_PATH NO_CACHE)
  set(${out_inc} "${_inc}" PARENT_SCOPE)
  set(${out_lib} "${_lib}" PARENT_SCOPE)
  set(${out_lt} "${_lt}" PARENT_SCOPE)
endfunction()

unset(_cublas_lib)
if(CDAS_CUBLAS_ROOT)
  _cdas_cublas_from_root("${CDAS_CUBLAS_ROOT}" _cublas_inc _cublas_lib _cublaslt_lib)
  if(NOT _cublas_inc OR NOT _cublas_lib)
    message(FATAL_ERROR "cdas: CDAS_CUBLAS_ROOT=${CDAS_CUBLAS_ROOT} has no include/cublas_v2.h and lib/libcublas.so*")
  endif()
elseif(TARGET CUDA::cublas)
  set(_cdas_cublas_target CUDA::cublas)
  message(STATUS "cdas: cuBLAS from the CUDA toolkit (${CUDAToolkit_LIBRARY_DIR})")
else()
  set(_cublas_root "${CDAS_DEPS_DIR}/cublas")
  if(NOT EXISTS "${_cublas_root}/include/cublas_v2.h" AND CDAS_FETCH_DEPS)
    execute_process(COMMAND bash "${CMAKE_SOURCE_DIR}/scripts/fetch-cublas.sh" "${CDAS_DEPS_DIR}"
                    RESULT_VARIABLE _fetch_rc)
    if(NOT _fetch_rc EQUAL 0)
      _cdas_cuda_unavailable("the CUDA toolkit has no cuBLAS and scripts/fetch-cublas.sh failed (exit ${_fetch_rc})")
    endif()
  endif()
  _cdas_cublas_from_root("${_cublas_root}" _cublas_inc _cublas_lib _cublaslt_lib)
  if(NOT _cublas_inc OR NOT _cublas_lib)
    _cdas_cuda_unavailable("no cuBLAS: not in the CUDA toolkit, not in ${_cublas_root}; set CDAS_CUBLAS_ROOT or CDAS_FETCH_DEPS=ON")
  endif()
endif()
if(NOT _cdas_cublas_target)
  add_library(cdas_cublas INTERFACE IMPORTED)
  target_include_directories(cdas_cublas INTERFACE "${_cublas_inc}")
  target_link_libraries(cdas_cublas INTERFACE "${_cublas_lib}")
  if(_cublaslt_lib)
    target_link_libraries(cdas_cublas INTERFACE "${_cublaslt_lib}")
  endif()
  get_filename_component(CDAS_CUBLAS_LIB_DIR "${_cublas_lib}" DIRECTORY)
  set(_cdas_cublas_target cdas_cublas)
  message(STATUS "cdas: cuBLAS from ${CDAS_CUBLAS_LIB_DIR}")
else()
  set(CDAS_CUBLAS_LIB_DIR "${CUDAToolkit_LIBRARY_DIR}")
endif()

# ---- libcdas_cuda.so -------------------------------------------------------------------------------
file(GLOB CDAS_CUDA_SOURCES CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/native/src/cuda/*.cu")
# cuBLAS is loaded by its soname (libcublas.so.N, libcublasLt.so.N). The build tree's library finds
# it through an absolute RUNPATH to the cuBLAS it was built against; the relocatable distribution's
# (CDAS_TORCH_BESIDE, scripts/build.sh) has RUNPATH $ORIGIN only, so it looks beside itself, then on
# LD_LIBRARY_PATH, then in the system's library folders (ldconfig), and never in this checkout.
if(CDAS_TORCH_BESIDE)
  set(_cdas_cuda_install_rpath "$ORIGIN")
else()
  set(_cdas_cuda_install_rpath "$ORIGIN;${CDAS_CUBLAS_LIB_DIR}")
endif()
add_library(cdas_cuda SHARED ${CDAS_CUDA_SOURCES})
target_include_directories(cdas_cuda PRIVATE "${CMAKE_SOURCE_DIR}/native/include" "${CMAKE_SOURCE_DIR}/native/src")
target_compile_features(cdas_cuda PRIVATE cxx_std_17)
set_target_properties(cdas_cuda PROPERTIES
  CUDA_ARCHITECTURES "${CDAS_CUDA_ARCHITECTURES}"
  CUDA_STANDARD 17
  CUDA_STANDARD_REQUIRED ON
  CUDA_RUNTIME_LIBRARY Static
  CUDA_VISIBILITY_PRESET hidden
  CXX_VISIBILITY_PRESET hidden
  VISIBILITY_INLINES_HIDDEN ON
  BUILD_RPATH "$ORIGIN;${CDAS_CUBLAS_LIB_DIR}"
  INSTALL_RPATH "${_cdas_cuda_install_rpath}")
target_compile_options(cdas_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-fvisibility=hidden --expt-relaxed-constexpr -lineinfo -Xcompiler=-Wall>)
target_link_libraries(cdas_cuda PRIVATE CUDA::cudart_static ${_cdas_cublas_target} ${CMAKE_DL_LIBS})
# Only cdas_cuda_backend_get leaves the library.
target_link_options(cdas_cuda PRIVATE "-Wl,--version-script=${CMAKE_SOURCE_DIR}/native/src/cuda/cdas_cuda.map" "-Wl,--no-undefined")
set_property(TARGET cdas_cuda APPEND PROPERTY LINK_DEPENDS "${CMAKE_SOURCE_DIR}/native/src/cuda/cdas_cuda.map")
install(TARGETS cdas_cuda LIBRARY DESTINATION lib)
set(CDAS_HAVE_CUDA ON)
message(STATUS "cdas: CUDA kernels -> libcdas_cuda.so (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, ${CDAS_CUDA_ARCHITECTURES})")

# ---- gpu_check_bench: the GPU check-and-bench program (benchmarks/gpu) ----------------------------
# Public ABI (libcdas, which loads libcdas_cuda.so) plus the CUDA runtime and cuBLAS for its own
# buffers and the GEMM reference rate. Plain C++: no kernels of its own. Not installed.
option(CDAS_BUILD_GPU_BENCH "Build benchmarks/gpu/gpu_check_bench with the CUDA kernels" ON)
if(CDAS_BUILD_GPU_BENCH)
  add_executable(gpu_check_bench "${CMAKE_SOURCE_DIR}/benchmarks/gpu/gpu_check_bench.cpp")
  target_include_directories(gpu_check_bench PRIVATE "${CMAKE_SOURCE_DIR}/native/include")
  target_compile_options(gpu_check_bench PRIVATE -O2 -Wall)
  target_link_libraries(gpu_check_bench PRIVATE cdas CUDA::cudart_static ${_cdas_cublas_target})
  set_target_properties(gpu_check_bench PROPERTIES
    BUILD_RPATH "$<TARGET_FILE_DIR:cdas>;${CDAS_CUBLAS_LIB_DIR};${CDAS_TORCH_LIB_DIR}")
  # libcdas_cuda.so is loaded at run time from libcdas's directory; build it with the program.
  add_dependencies(gpu_check_bench cdas_cuda)
endif()
