#pragma once
// Every test's first include: doctest, and how it prints the containers and Eigen matrices the tests compare
// (support/printing.hpp).
#include <doctest/doctest.h>

#include "support/printing.hpp"
