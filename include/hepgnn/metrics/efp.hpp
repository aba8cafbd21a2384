#pragma once
/// @file efp.hpp
/// @brief Energy flow polynomials (Komiske, Metodiev, Thaler, arXiv:1712.07124) of jets in the JetNet layout, as
/// energyflow's `EFPSet(..., measure="hadr", beta=1, normed=None, coords="ptyphim")` computes them for JetNet
/// (jetnet.utils.efps): z_i = pt_i / sum_j pt_j, theta_ij = sqrt(deta^2 + dphi^2)^beta with JetNet's eta_rel
/// taken as the rapidity and the phi difference wrapped into [0, pi] (as energyflow's hadr measure does).
///
/// EFP_G = sum over particles i_1..i_n of z_i1 ... z_in prod_{(k,l) in G} theta_{i_k i_l}. A disconnected graph
/// is the product of its connected parts. The engine sums a connected graph by eliminating vertices one at a time
/// (variable elimination, as energyflow's einsum paths do): a vertex with one neighbour folds into that neighbour
/// in O(M^2), a vertex with two into a pair factor of its neighbours, F1^T diag(w) F2, in O(M^3) (a matrix
/// product). Every multigraph of treewidth <= 2 (all graphs with fewer than 6 edges, so JetNet's d <= 4 sets)
/// reduces this way; others are refused. Cost per jet of M particles: O(M^2) for trees, O(M^3) per cycle vertex.

#include <algorithm>
#include <cmath>
#include <numbers>
#include <span>
#include <utility>
#include <vector>

#include "hepgnn/core/error.hpp"
#include "hepgnn/core/parallel.hpp"
#include "hepgnn/core/tensor.hpp"
#include "hepgnn/data/jet_array.hpp"

namespace hepgnn {

/// @brief A multigraph on vertices 0 .. num_vertices - 1: each edge (a, b), a != b, is a factor theta_ab; an edge
/// listed twice is theta_ab^2. A graph without edges and one vertex is sum_i z_i (= 1 with normalised pt).
struct efp_graph {
  int num_vertices = 0;
  std::vector<std::pair<int, int>> edges;
  int num_edges() const { return static_cast<int>(edges.size()); }
};

/// @brief energyflow's graph lists (`EFPSet(...).graphs()`, energyflow 1.x, in its order).
namespace efp_graphs {
/// @brief `("n==", 4), ("d==", 4), ("p==", 1)`: the 5 connected graphs with 4 vertices and 4 edges; JetNet's w1efp.
inline std::vector<efp_graph> n4_d4_prime() {
  return {{4, {{0, 1}, {0, 2}, {0, 2}, {0, 3}}},   // star with a doubled edge
          {4, {{0, 1}, {0, 2}, {0, 2}, {1, 3}}},   // path, doubled edge next to an end edge
          {4, {{0, 1}, {0, 1}, {0, 2}, {1, 3}}},   // path, doubled middle edge
          {4, {{0, 1}, {0, 2}, {0, 3}, {1, 2}}},   // triangle with a pendant
          {4, {{0, 1}, {0, 2}, {1, 3}, {2, 3}}}};  // square
}
/// @brief `("d<=", 4)`: the 36 graphs with at most 4 edges (connected or not, the empty one first), JetNet's
/// FPD / KPD features (jetnet.evaluation.get_fpd_kpd_jet_features).
inline std::vector<efp_graph> d_le_4() {
  return {{1, {}},
          {2, {{0, 1}}},
          {2, {{0, 1}, {0, 1}}},
          {2, {{0, 1}, {0, 1}, {0, 1}}},
          {2, {{0, 1}, {0, 1}, {0, 1}, {0, 1}}},
          {3, {{0, 1}, {0, 2}}},
          {3, {{0, 1}, {0, 2}, {0, 2}}},
          {3, {{0, 1}, {0, 2}, {0, 2}, {0, 2}}},
          {3, {{0, 1}, {0, 1}, {0, 2}, {0, 2}}},
          {3, {{0, 1}, {0, 2}, {1, 2}}},
          {3, {{0, 1}, {0, 2}, {0, 2}, {1, 2}}},
          {4, {{0, 1}, {0, 2}, {0, 3}}},
          {4, {{0, 1}, {0, 2}, {0, 2}, {0, 3}}},
          {4, {{0, 1}, {0, 2}, {1, 3}}},
          {4, {{0, 1}, {0, 2}, {0, 2}, {1, 3}}},
          {4, {{0, 1}, {0, 1}, {0, 2}, {1, 3}}},
          {4, {{0, 1}, {0, 2}, {0, 3}, {1, 2}}},
          {4, {{0, 1}, {0, 2}, {1, 3}, {2, 3}}},
          {5, {{0, 1}, {0, 2}, {0, 3}, {0, 4}}},
          {5, {{0, 1}, {0, 2}, {0, 3}, {1, 4}}},
          {5, {{0, 1}, {0, 2}, {1, 3}, {2, 4}}},
          {4, {{0, 1}, {2, 3}}},
          {4, {{0, 1}, {2, 3}, {2, 3}}},
          {4, {{0, 1}, {2, 3}, {2, 3}, {2, 3}}},
          {4, {{0, 1}, {0, 1}, {2, 3}, {2, 3}}},
          {5, {{0, 1}, {2, 3}, {2, 4}}},
          {5, {{0, 1}, {0, 1}, {2, 3}, {2, 4}}},
          {5, {{0, 1}, {2, 3}, {2, 4}, {2, 4}}},
          {5, {{0, 1}, {2, 3}, {2, 4}, {3, 4}}},
          {6, {{0, 1}, {2, 3}, {4, 5}}},
          {6, {{0, 1}, {2, 3}, {2, 4}, {2, 5}}},
          {6, {{0, 1}, {2, 3}, {2, 4}, {3, 5}}},
          {6, {{0, 1}, {0, 2}, {3, 4}, {3, 5}}},
          {6, {{0, 1}, {2, 3}, {4, 5}, {4, 5}}},
          {7, {{0, 1}, {2, 3}, {4, 5}, {4, 6}}},
          {8, {{0, 1}, {2, 3}, {4, 5}, {6, 7}}}};
}
}  // namespace efp_graphs

/// @brief Options of the EFP measure.
struct efp_options {
  double beta = 1;        ///< angular exponent, theta_ij = dR_ij^beta (JetNet: 1)
  /// z_i = pt_i / sum pt when true; z_i = pt_i when false, which is what JetNet gets: it passes normed=None, which
  /// energyflow's measure takes as false (so EFPs of generated jets whose pt_rel do not sum to 1 scale with it).
  bool normed = false;
};

namespace efp_detail {

/// One connected component of a graph, ready for elimination: vertices renumbered 0..n-1 and, per vertex pair
/// with at least one edge, the edge multiplicity.
struct component {
  int n = 0;
  std::vector<std::vector<int>> mult;  // n x n, symmetric
};

inline std::vector<component> components(const efp_graph& g) {
  const int n = g.num_vertices;
  std::vector<int> comp(n, -1);
  std::vector<std::vector<int>> adj(n);
  for (auto [a, b] : g.edges) adj[a].push_back(b), adj[b].push_back(a);
  std::vector<component> out;
  for (int s = 0; s < n; ++s) {
    if (comp[s] >= 0) continue;
    std::vector<int> members{s};
    comp[s] = static_cast<int>(out.size());
    for (std::size_t k = 0; k < members.size(); ++k)
      for (int v : adj[members[k]])
        if (comp[v] < 0) comp[v] = comp[s], members.push_back(v);
    std::sort(members.begin(), members.end());
    component c;
    c.n = static_cast<int>(members.size());
    c.mult.assign(c.n, std::vector<int>(c.n, 0));
    auto local = [&](int v) { return static_cast<int>(std::find(members.begin(), members.end(), v) - members.begin()); };
    for (auto [a, b] : g.edges)
      if (comp[a] == comp[s]) ++c.mult[local(a)][local(b)], ++c.mult[local(b)][local(a)];
    out.push_back(std::move(c));
  }
  return out;
}

/// Checks a graph and that its components eliminate with at most two neighbours per step (treewidth <= 2).
inline void check_graph(const efp_graph& g, std::size_t which) {
  HEPGNN_CHECK(g.num_vertices >= 1, "efp: graphs[", which, "] needs at least one vertex, got ", g.num_vertices);
  for (auto [a, b] : g.edges)
    HEPGNN_CHECK(a >= 0 && b >= 0 && a < g.num_vertices && b < g.num_vertices && a != b, "efp: graphs[", which,
                 "] has edge (", a, ", ", b, "); expected two different vertices in [0, ", g.num_vertices, ")");
  for (const auto& c : components(g)) {
    std::vector<std::vector<bool>> adj(c.n, std::vector<bool>(c.n));
    for (int a = 0; a < c.n; ++a)
      for (int b = 0; b < c.n; ++b) adj[a][b] = c.mult[a][b] > 0;
    std::vector<bool> gone(c.n, false);
    for (int step = 0; step < c.n; ++step) {
      int best = -1, best_deg = 1 << 30;
      for (int v = 0; v < c.n; ++v) {
        if (gone[v]) continue;
        int d = 0;
        for (int u = 0; u < c.n; ++u) d += !gone[u] && adj[v][u];
        if (d < best_deg) best = v, best_deg = d;
      }
      HEPGNN_CHECK(best_deg <= 2, "efp: graphs[", which, "] has treewidth above 2 (no vertex with at most two ",
                   "neighbours left); the engine sums only such graphs");
      std::vector<int> nb;
      for (int u = 0; u < c.n; ++u)
        if (!gone[u] && adj[best][u]) nb.push_back(u);
      if (nb.size() == 2) adj[nb[0]][nb[1]] = adj[nb[1]][nb[0]] = true;
      gone[best] = true;
    }
  }
}

/// Per-jet scratch: theta powers and the elimination's factors.
struct scratch {
  std::vector<matrix<double>> theta_pow;  // theta_pow[k] = theta^(k+1) element-wise
  vector<double> z;
  std::vector<vector<double>> unary;
  std::vector<matrix<double>> pair;  // pair[a * n + b], a < b: F(x_a, x_b); empty if none
  std::vector<bool> has_pair;
  std::vector<double> values;  // per distinct connected part
};

/// Sum of a connected component over the particles (theta_pow filled up to the largest multiplicity).
inline double component_value(const component& c, scratch& s) {
  const int n = c.n;
  const Eigen::Index m = s.z.size();
  s.unary.assign(n, vector<double>::Ones(m));
  s.pair.resize(static_cast<std::size_t>(n) * n);
  s.has_pair.assign(static_cast<std::size_t>(n) * n, false);
  for (int a = 0; a < n; ++a)
    for (int b = a + 1; b < n; ++b)
      if (c.mult[a][b] > 0) {
        s.pair[a * n + b] = s.theta_pow[c.mult[a][b] - 1];
        s.has_pair[a * n + b] = true;
      }
  // factor between v and u with v's particle index as the row
  auto oriented = [&](int v, int u) -> matrix<double> {
    return v < u ? s.pair[v * n + u] : matrix<double>(s.pair[u * n + v].transpose());
  };
  std::vector<bool> gone(n, false);
  double value = 1;
  for (int step = 0; step < n; ++step) {
    int v = -1;
    std::vector<int> nb, best_nb;
    for (int w = 0; w < n; ++w) {
      if (gone[w]) continue;
      nb.clear();
      for (int u = 0; u < n; ++u)
        if (!gone[u] && u != w && s.has_pair[std::min(u, w) * n + std::max(u, w)]) nb.push_back(u);
      if (v < 0 || nb.size() < best_nb.size()) v = w, best_nb = nb;
    }
    const vector<double> w = s.z.cwiseProduct(s.unary[v]);
    if (best_nb.empty()) {
      value *= w.sum();
    } else if (best_nb.size() == 1) {
      const int u = best_nb[0];
      const matrix<double> f = oriented(v, u);
      s.unary[u] = s.unary[u].cwiseProduct(f.transpose() * w);
    } else {
      const int u1 = best_nb[0], u2 = best_nb[1];  // u1 < u2
      const matrix<double> f1 = oriented(v, u1), f2 = oriented(v, u2);
      matrix<double> c12 = f1.transpose() * w.asDiagonal() * f2;
      auto& p = s.pair[u1 * n + u2];
      if (s.has_pair[u1 * n + u2]) p = p.cwiseProduct(c12);
      else p = std::move(c12), s.has_pair[u1 * n + u2] = true;
    }
    gone[v] = true;
    for (int u = 0; u < n; ++u) s.has_pair[std::min(u, v) * n + std::max(u, v)] = false;
  }
  return value;
}

}  // namespace efp_detail

/// @brief EFPs of every jet: a num_jets x graphs.size() matrix. Uses the first three columns of the jets
/// (eta_rel, phi_rel, pt_rel); padded slots have pt 0 and add nothing. With `normed`, a jet of zero total pt gives 0.
/// Threaded over jets; each jet's values do not depend on the thread count.
template <class T>
matrix<double> efps(const jet_array<T>& jets, const std::vector<efp_graph>& graphs, const efp_options& opt = {}) {
  jets.validate("efps: jets");
  HEPGNN_CHECK(!graphs.empty(), "efps: graphs must not be empty");
  HEPGNN_CHECK(std::isfinite(opt.beta) && opt.beta > 0, "efps: beta must be positive and finite, got ", opt.beta);
  // connected parts shared by several graphs (a single edge appears in 8 of the d <= 4 graphs) are summed once
  std::vector<efp_detail::component> unique;
  std::vector<std::vector<std::size_t>> parts(graphs.size());
  int max_mult = 1;
  for (std::size_t g = 0; g < graphs.size(); ++g) {
    efp_detail::check_graph(graphs[g], g);
    for (auto& c : efp_detail::components(graphs[g])) {
      for (const auto& row : c.mult)
        for (int k : row) max_mult = std::max(max_mult, k);
      std::size_t u = 0;
      while (u < unique.size() && !(unique[u].n == c.n && unique[u].mult == c.mult)) ++u;
      if (u == unique.size()) unique.push_back(std::move(c));
      parts[g].push_back(u);
    }
  }
  const index_t n_jets = jets.num_jets, p = jets.max_particles;
  matrix<double> out(n_jets, static_cast<Eigen::Index>(graphs.size()));
  const long work = static_cast<long>(n_jets) * p * p * static_cast<long>(graphs.size());
  parallel_for_with(
      n_jets, work >= parallel_limits::min_work, parallel_limits::efp_chunk,
      [](int) { return efp_detail::scratch{}; },
      [&](long j, efp_detail::scratch& s) {
        const index_t m = jets.count(static_cast<index_t>(j));
        s.z.resize(m);
        for (index_t i = 0; i < m; ++i) s.z[i] = static_cast<double>(jets.row(static_cast<index_t>(j), i)(jet_col::pt_rel));
        const double total = s.z.sum();
        if (opt.normed) {
          if (total > 0) s.z /= total;
          else s.z.setZero();
        }
        s.theta_pow.resize(max_mult);
        s.theta_pow[0].resize(m, m);
        for (index_t a = 0; a < m; ++a)
          for (index_t b = 0; b < m; ++b) {
            const auto ra = jets.row(static_cast<index_t>(j), a), rb = jets.row(static_cast<index_t>(j), b);
            const double de = static_cast<double>(ra(jet_col::eta_rel)) - static_cast<double>(rb(jet_col::eta_rel));
            const double dphi = static_cast<double>(ra(jet_col::phi_rel)) - static_cast<double>(rb(jet_col::phi_rel));
            // energyflow's wrap-around, written as it does: pi - ||dphi| - pi| (not |dphi| itself, which differs
            // in the last bits and so by up to 1e-11 relative for tiny angles)
            const double dp = std::numbers::pi - std::abs(std::abs(dphi) - std::numbers::pi);
            const double d2 = de * de + dp * dp;
            s.theta_pow[0](a, b) = opt.beta == 1 ? std::sqrt(d2) : std::pow(d2, opt.beta / 2);
          }
        for (int k = 1; k < max_mult; ++k) s.theta_pow[k] = s.theta_pow[k - 1].cwiseProduct(s.theta_pow[0]);
        s.values.resize(unique.size());
        for (std::size_t u = 0; u < unique.size(); ++u) s.values[u] = efp_detail::component_value(unique[u], s);
        for (std::size_t g = 0; g < graphs.size(); ++g) {
          double v = 1;
          for (std::size_t u : parts[g]) v *= s.values[u];
          out(j, static_cast<Eigen::Index>(g)) = v;
        }
      },
      [](efp_detail::scratch&) {});
  return out;
}

}  // namespace hepgnn
