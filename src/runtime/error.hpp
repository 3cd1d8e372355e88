// Errors of the Linux driver: a failing environment (a system call, a missing interface, a bad
// config file) is an error value with a message a human can act on (STYLE 7). The types are the
// node's (node/result.hpp); what is Linux's is errno.
#pragma once

#include <cerrno>
#include <string>

#include "node/result.hpp"

namespace phalanx::runtime {

using node::Error;
using node::Ok;
using node::Result;
using node::Status;

// "what: strerror(errno)"; call right after the failing system call, before errno changes.
Error errno_error(std::string what, int err = errno);

}  // namespace phalanx::runtime
