# Defines dpdk_net::libdpdk: an INTERFACE IMPORTED target carrying DPDK's link flags from
# pkg-config. Used by our build and, installed, by dpdk_netConfig.cmake, so an installed
# dpdk_net::dpdk links DPDK the same way on the consumer's machine. Compile flags (-march,
# -include rte_config.h) are deliberately absent: only the backend's own sources need them.
function(dpdk_net_define_libdpdk prefix)
  if(TARGET dpdk_net::libdpdk)
    return()
  endif()
  add_library(dpdk_net::libdpdk INTERFACE IMPORTED)
  set_target_properties(dpdk_net::libdpdk PROPERTIES
    INTERFACE_LINK_DIRECTORIES "${${prefix}_LIBRARY_DIRS}"
    INTERFACE_LINK_LIBRARIES "${${prefix}_LINK_LIBRARIES};${${prefix}_LDFLAGS_OTHER}")
endfunction()
