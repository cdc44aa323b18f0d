// Separate compilation of Boost.Asio and Boost.Beast: their out-of-line code is compiled once
// here instead of in every translation unit that includes them (see BOOST_*_SEPARATE_COMPILATION
// on the dpdk_net_boost target).
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
