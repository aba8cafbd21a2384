// Precompiled once for every test executable (HEPGNN_TEST_PCH in tests/CMakeLists.txt): the third-party and standard
// headers every test parses. hepgnn's own headers stay out, so each test still includes what it uses.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/LU>
#include <xsimd/xsimd.hpp>

#include "support/doctest.hpp"
