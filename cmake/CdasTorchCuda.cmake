# What the library was built against, for cdas_build_info() (`java -jar dist/cdas-native.jar version`),
# and the adjustments a CUDA build of libtorch needs. Included right after find_package(Torch).
#
# Any libtorch: C++20 when its headers need it (torch >= 2.14), its C++ ABI for every target.
# With a CPU libtorch 2.13 (the default build) this only records the versions. With a CUDA libtorch
# (TorchConfig.cmake defines the c10_cuda / torch_cuda targets):
#   * torch's public/cuda.cmake appends -gencode flags for TORCH_CUDA_ARCH_LIST (or, without a
#     GPU, a long default list) to CMAKE_CUDA_FLAGS; libcdas_cuda.so declares its own
#     architectures (cmake/CdasCuda.cmake), so those flags are removed here instead of making nvcc
#     compile every kernel for every architecture torch knows;
#   * libcdas links with --as-needed, so the CUDA libraries TorchConfig lists (NVRTC, cudart) are
#     found at run time through libtorch's own RUNPATH, not libcdas's.
#
#   CDAS_REQUIRE_TORCH_CUDA=ON   fail unless the libtorch found is a CUDA build (the CUDA-libtorch
#                                build sets it, so it can never fall back to the CPU libtorch)

option(CDAS_REQUIRE_TORCH_CUDA "Fail unless the libtorch found is a CUDA build" OFF)

if(NOT TARGET torch)  # built without libtorch: nothing to record
  return()
endif()

set(CDAS_TORCH_HAS_CUDA OFF)
if(TARGET c10_cuda OR TARGET torch_cuda OR C10_CUDA_LIBRARY)
  set(CDAS_TORCH_HAS_CUDA ON)
endif()
if(CDAS_REQUIRE_TORCH_CUDA AND NOT CDAS_TORCH_HAS_CUDA)
  message(FATAL_ERROR "cdas: CDAS_REQUIRE_TORCH_CUDA=ON but the libtorch found (${CDAS_TORCH_LIB_DIR}) "
                      "is not a CUDA build; pass -DCMAKE_PREFIX_PATH=<CUDA torch>/share/cmake")
endif()

# torch 2.14's headers need C++20 (std::string_view::ends_with in c10/util/TypeIndex.h); older
# ones build with the project's C++17. The targets defined after this point follow.
if(Torch_VERSION VERSION_GREATER_EQUAL 2.14 AND CMAKE_CXX_STANDARD LESS 20)
  set(CMAKE_CXX_STANDARD 20)
  message(STATUS "cdas: libtorch ${Torch_VERSION} needs C++20; compiling the C++ sources as C++20")
endif()

# A libtorch built with the pre-C++11 ABI (older pip wheels): every C++ target must match it,
# not only those that link torch (the CPU kernels are linked into libcdas too).
if(TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
  add_compile_options(-D_GLIBCXX_USE_CXX11_ABI=0)
  message(STATUS "cdas: libtorch uses the pre-C++11 ABI; compiling everything with _GLIBCXX_USE_CXX11_ABI=0")
endif()

set(CDAS_TORCH_CUDA_VERSION "")
if(CDAS_TORCH_HAS_CUDA)
  # CUDA_VERSION comes from torch's FindCUDA (the toolkit libtorch's headers were compiled against here).
  if(CUDA_VERSION)
    set(CDAS_TORCH_CUDA_VERSION "${CUDA_VERSION}")
  elseif(CUDAToolkit_VERSION)
    set(CDAS_TORCH_CUDA_VERSION "${CUDAToolkit_VERSION}")
  endif()
  string(REGEX REPLACE "-gencode[ =]+arch=[^ ]+" "" _cdas_cuda_flags "${CMAKE_CUDA_FLAGS}")
  string(REGEX REPLACE "  +" " " _cdas_cuda_flags "${_cdas_cuda_flags}")
  set(CMAKE_CUDA_FLAGS "${_cdas_cuda_flags}")
  message(STATUS "cdas: libtorch is a CUDA build (CUDA ${CDAS_TORCH_CUDA_VERSION}); "
                 "torch's -gencode flags dropped, libcdas_cuda.so keeps its own architectures")
endif()

# The link option is set once the cdas target exists.
# The facts go to one source file only (native/src/api/build_info.cpp), so changing them rebuilds
# nothing else. The CUDA compiler is known only once cmake/CdasCuda.cmake has run: deferred.
function(_cdas_record_build_info)
  if(CDAS_TORCH_HAS_CUDA AND TARGET cdas)
    # TorchConfig adds NVRTC and (through c10_cuda) cudart to TORCH_LIBRARIES; libcdas calls
    # neither, and as direct dependencies they would have to be found through libcdas's own
    # RUNPATH rather than libtorch's ($ORIGIN/../../nvidia/...). torch's own libraries stay:
    # TorchConfig wraps them in -Wl,--no-as-needed (libtorch_cuda registers the CUDA kernels).
    target_link_options(cdas PRIVATE "-Wl,--as-needed")
  endif()
  set(_cuda_kernels "not built")
  if(CDAS_HAVE_CUDA)
    set(_cuda_kernels "nvcc ${CMAKE_CUDA_COMPILER_VERSION}")
  endif()
  set_property(SOURCE "${CMAKE_SOURCE_DIR}/native/src/api/build_info.cpp" APPEND PROPERTY COMPILE_DEFINITIONS
    "CDAS_BUILT_TORCH_VERSION=\"${Torch_VERSION}\""
    "CDAS_BUILT_TORCH_CUDA=\"${CDAS_TORCH_CUDA_VERSION}\""
    "CDAS_BUILT_TORCH_DIR=\"${CDAS_TORCH_LIB_DIR}\""
    "CDAS_BUILT_CUDA_KERNELS=\"${_cuda_kernels}\""
    "CDAS_BUILT_COMPILER=\"${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION}\"")
endfunction()
cmake_language(DEFER CALL _cdas_record_build_info)
