#pragma once
// moved to hepgnn/simd/product.hpp; kept until the callers are updated (allowlisted in scripts/layering_allowlist.txt)
#include "hepgnn/simd/product.hpp"
