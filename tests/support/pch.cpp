// The translation unit that owns the tests' precompiled header (support/pch.hpp); the test executables reuse it.
