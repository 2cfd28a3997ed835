# Data parallel over torch c10d (native/src/torch/dist.cpp, cdas_dist_* of cdas.h).
# libtorch exports its c10d process groups, but the torch wheel ships no headers of Gloo (which
# ProcessGroupGloo.hpp includes) nor of NCCL: they come from the system, never from this
# repository. Gloo: Debian/Ubuntu's libgloo-dev (headers only are used; libtorch carries Gloo's
# code), or any folder holding gloo/algorithm.h given as CDAS_GLOO_INCLUDE_DIR or GLOO_ROOT.
# NCCL (CUDA libtorch only): nccl.h from NCCL_INCLUDE_DIR, NCCL_ROOT, the nvidia-nccl wheel's
# folder beside torch, or the CUDA toolkit, plus the CUDA library headers ProcessGroupNCCL.hpp
# needs (below). Without them the library still builds and cdas_dist_create answers
# CDAS_STATUS_UNSUPPORTED saying what to install.
# Only dist.cpp gets the include folders and definitions, so finding them rebuilds nothing else.
set(CDAS_DIST_BACKENDS "")
if(CDAS_WITH_TORCH)
  set(_cdas_dist_source "${CMAKE_SOURCE_DIR}/native/src/torch/dist.cpp")
  find_path(CDAS_GLOO_INCLUDE_DIR gloo/algorithm.h HINTS ENV GLOO_ROOT PATH_SUFFIXES include
            DOC "Folder holding gloo/algorithm.h (Debian/Ubuntu: libgloo-dev)")
  if(CDAS_GLOO_INCLUDE_DIR)
    set_property(SOURCE "${_cdas_dist_source}" APPEND PROPERTY INCLUDE_DIRECTORIES "${CDAS_GLOO_INCLUDE_DIR}")
    set_property(SOURCE "${_cdas_dist_source}" APPEND PROPERTY COMPILE_DEFINITIONS CDAS_WITH_GLOO)
    list(APPEND CDAS_DIST_BACKENDS gloo)
    message(STATUS "cdas: data parallel (c10d Gloo): Gloo headers from ${CDAS_GLOO_INCLUDE_DIR}")
  else()
    message(STATUS "cdas: data parallel (c10d Gloo) NOT built: Gloo's headers (gloo/algorithm.h) not found; "
                   "install them (Debian/Ubuntu: apt-get install libgloo-dev) or set CDAS_GLOO_INCLUDE_DIR, then "
                   "reconfigure. train --distributed fails until then")
  endif()
  if(CDAS_TORCH_HAS_CUDA)
    get_filename_component(_cdas_torch_site "${CDAS_TORCH_LIB_DIR}/../.." ABSOLUTE)
    file(GLOB _cdas_nccl_wheel_dirs "${_cdas_torch_site}/nvidia/*/include" "${_cdas_torch_site}/nvidia/nccl/include")
    # ProcessGroupNCCL.hpp includes ATen/cuda/CUDAContextLight.h, which includes the headers of
    # cuSPARSE, cuBLAS(Lt) and cuSOLVER: from the CUDA toolkit, or the nvidia-* wheels beside torch
    # (scripts/build-cuda-torch.sh fetches their headers), or cuBLAS's own folder (CDAS_CUBLAS_ROOT).
    set(_cdas_nccl_missing "")
    set(_cdas_nccl_dirs "")
    foreach(_cdas_header nccl.h cusparse.h cublas_v2.h cublasLt.h cusolverDn.h)
      string(MAKE_C_IDENTIFIER "CDAS_${_cdas_header}_DIR" _cdas_var)
      string(TOUPPER "${_cdas_var}" _cdas_var)
      if(_cdas_header STREQUAL "nccl.h")
        set(_cdas_var CDAS_NCCL_INCLUDE_DIR)
      endif()
      find_path(${_cdas_var} ${_cdas_header} HINTS ENV NCCL_INCLUDE_DIR ENV NCCL_ROOT ${_cdas_nccl_wheel_dirs}
                "${CUDAToolkit_INCLUDE_DIRS}" "${CDAS_CUBLAS_ROOT}/include" PATH_SUFFIXES include
                DOC "Folder holding ${_cdas_header} (for the c10d NCCL backend)")
      if(${_cdas_var})
        list(APPEND _cdas_nccl_dirs "${${_cdas_var}}")
      else()
        list(APPEND _cdas_nccl_missing ${_cdas_header})
      endif()
    endforeach()
    list(REMOVE_DUPLICATES _cdas_nccl_dirs)
    if(NOT _cdas_nccl_missing)
      set_property(SOURCE "${_cdas_dist_source}" APPEND PROPERTY INCLUDE_DIRECTORIES ${_cdas_nccl_dirs})
      set_property(SOURCE "${_cdas_dist_source}" APPEND PROPERTY COMPILE_DEFINITIONS CDAS_WITH_NCCL)
      list(APPEND CDAS_DIST_BACKENDS nccl)
      message(STATUS "cdas: data parallel (c10d NCCL): nccl.h from ${CDAS_NCCL_INCLUDE_DIR}")
    else()
      string(REPLACE ";" ", " _cdas_nccl_missing "${_cdas_nccl_missing}")
      message(STATUS "cdas: data parallel (c10d NCCL) NOT built: ${_cdas_nccl_missing} not found (set NCCL_INCLUDE_DIR "
                     "for nccl.h; the others come with the CUDA toolkit or the nvidia-* wheels beside torch)")
    endif()
  endif()
endif()
