#pragma once
/// @file emd_simplex.hpp
/// @brief Exact solvers behind hepgnn::emd: a network (transportation) simplex for general weights and a
/// shortest-augmenting-path (Jonker-Volgenant style) assignment solver for equal-size uniform weights.
/// Both work in double on a dense row-major cost matrix and return the optimal flow and dual potentials.

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <Eigen/Core>

#include "hepgnn/simd/reduce.hpp"

namespace hepgnn::detail {

/// @brief Reusable buffers of the transportation simplex (one per thread; no allocation once warm).
struct transport_workspace {
  std::vector<double> supply, demand, pot, flow, offset;
  std::vector<int> parent, pos, size, order, stack, moved, rpath, cpath, adj_off, adj_arc;
  std::vector<char> alive;
  // assignment solver
  std::vector<double> shortest;
  std::vector<int> path, row4col, col4row, remaining;
  std::vector<char> sr, sc;
};

/// @brief Outcome of a transport solve: optimal cost, the basic arcs (row, col, flow) and the dual potentials.
struct transport_solution {
  double cost = 0;
  std::vector<int> arc_row, arc_col;  ///< basic arcs (a spanning tree; some may carry zero flow)
  std::vector<double> arc_flow;
  std::vector<double> u, v;  ///< duals: u_i + v_j <= C_ij, equality on basic arcs
  bool converged = true;
  long pivots = 0;
};

/// @brief min <F, C> s.t. F 1 = a, F^T 1 = b, F >= 0, by the network simplex on the complete bipartite graph.
///
/// Requires n, m >= 1, a, b >= 0 with equal sums (up to rounding; the difference is absorbed by the last demand).
/// Starts from a row-minimum basis (each step exhausts exactly one row or column, so the basis is a spanning
/// tree), prices arcs by block search (the most negative reduced cost in blocks of ~4 sqrt(n m) entries, SIMD),
/// and keeps the tree as its preorder sequence with subtree sizes, so that a pivot moves one contiguous range
/// and updates the potentials of the moved subtree only. Degeneracy is avoided by Orden's perturbation
/// (a_i + eps, b_m + n eps); the final flows are recomputed on the optimal tree from the unperturbed weights.
inline void transport_simplex(int n, int m, const double* C, const double* a, const double* b,
                              transport_solution& sol, transport_workspace& ws, long max_pivots = 0) {
  const int N = n + m;
  double total = 0;
  for (int i = 0; i < n; ++i) total += a[i];
  const double max_cost = Eigen::Map<const Eigen::ArrayXd>(C, static_cast<long>(n) * m).abs().maxCoeff();
  const double eps = 1e-12 * (total > 0 ? total : 1.0);
  ws.supply.assign(a, a + n);
  ws.demand.assign(b, b + m);
  for (int i = 0; i < n; ++i) ws.supply[i] += eps;
  double sa = 0, sb = 0;
  for (int i = 0; i < n; ++i) sa += ws.supply[i];
  for (int j = 0; j < m - 1; ++j) sb += ws.demand[j];
  ws.demand[m - 1] = std::max(0.0, sa - sb);

  // --- initial basis: row-minimum rule, exactly one line eliminated per step (n + m - 1 arcs) ---
  // (ordering the rows by Vogel regret first gave no measurable gain on W4a)
  // dead columns get a -inf offset, so "cheapest alive column" is one SIMD min of C_ij - offset_j
  ws.offset.assign(m, 0.0);
  sol.arc_row.clear();
  sol.arc_col.clear();
  sol.arc_flow.clear();
  std::vector<double>& s = ws.supply;
  std::vector<double>& d = ws.demand;
  auto add_arc = [&](int i, int j, double f) {
    sol.arc_row.push_back(i);
    sol.arc_col.push_back(j);
    sol.arc_flow.push_back(f);
  };
  int alive_cols = m;
  const double dead = -std::numeric_limits<double>::infinity();
  for (int i = 0; i < n; ++i) {
    const double* Ci = C + static_cast<long>(i) * m;
    if (i == n - 1) {
      for (int j = 0; j < m; ++j)
        if (ws.offset[j] != dead) add_arc(i, j, std::max(0.0, d[j]));
      break;
    }
    while (true) {
      int best = 0;
      simd::min_difference(Ci, ws.offset.data(), m, best);
      while (ws.offset[best] == dead) ++best;  // only if every alive cost is +inf
      if (s[i] < d[best] || alive_cols == 1) {  // row exhausted
        add_arc(i, best, s[i]);
        d[best] = std::max(0.0, d[best] - s[i]);
        break;
      }
      add_arc(i, best, d[best]);  // column exhausted
      s[i] -= d[best];
      ws.offset[best] = dead;
      --alive_cols;
    }
  }

  // --- root the tree at row 0: parents, flows stored at the child, potentials, preorder positions and sizes ---
  // The tree is kept as its preorder sequence `order` (pos = inverse, size = subtree size), so every subtree is
  // one contiguous range: ancestry is two comparisons, and a pivot moves one range and shifts the ones between.
  std::vector<int>& parent = ws.parent;
  std::vector<int>& pos = ws.pos;
  std::vector<int>& size = ws.size;
  std::vector<int>& order = ws.order;
  std::vector<double>& pot = ws.pot;
  std::vector<double>& flow = ws.flow;
  parent.assign(N, -1);
  pot.assign(N, 0.0);
  flow.assign(N, 0.0);
  size.assign(N, 1);
  pos.resize(N);
  auto cost_of = [&](int x, int y) {  // x, y: one row node and one column node
    return x < n ? C[static_cast<long>(x) * m + (y - n)] : C[static_cast<long>(y) * m + (x - n)];
  };
  {
    // CSR adjacency of the initial arcs, a BFS from the root, subtree sizes leaves first, then preorder slots
    const int A = static_cast<int>(sol.arc_row.size());
    std::vector<int>& bfs = ws.stack;
    ws.adj_off.assign(N + 1, 0);
    for (int k = 0; k < A; ++k) ++ws.adj_off[sol.arc_row[k] + 1], ++ws.adj_off[n + sol.arc_col[k] + 1];
    for (int x = 0; x < N; ++x) ws.adj_off[x + 1] += ws.adj_off[x];
    ws.adj_arc.resize(2 * A);
    order.assign(ws.adj_off.begin(), ws.adj_off.end() - 1);  // fill cursors
    for (int k = 0; k < A; ++k) ws.adj_arc[order[sol.arc_row[k]]++] = k, ws.adj_arc[order[n + sol.arc_col[k]]++] = k;
    bfs.clear();
    bfs.push_back(0);
    ws.alive.assign(N, 0);
    ws.alive[0] = 1;
    for (std::size_t q = 0; q < bfs.size(); ++q) {
      const int x = bfs[q];
      for (int t = ws.adj_off[x]; t < ws.adj_off[x + 1]; ++t) {
        const int k = ws.adj_arc[t];
        const int y = x < n ? n + sol.arc_col[k] : sol.arc_row[k];
        if (ws.alive[y]) continue;
        ws.alive[y] = 1;
        parent[y] = x;
        pot[y] = cost_of(x, y) - pot[x];
        flow[y] = sol.arc_flow[k];
        bfs.push_back(y);
      }
    }
    for (std::size_t q = bfs.size(); q-- > 1;) size[parent[bfs[q]]] += size[bfs[q]];
    order.resize(N);
    std::vector<int>& cursor = ws.adj_off;  // next free preorder slot below each node
    pos[0] = 0;
    cursor[0] = 1;
    for (std::size_t q = 1; q < bfs.size(); ++q) {
      const int y = bfs[q];
      pos[y] = cursor[parent[y]];
      cursor[parent[y]] += size[y];
      cursor[y] = pos[y] + 1;
    }
    for (int x = 0; x < N; ++x) order[pos[x]] = x;
  }
  auto is_ancestor = [&](int x, int y) {  // x is y or above it
    return static_cast<unsigned>(pos[y] - pos[x]) < static_cast<unsigned>(size[x]);
  };

  // --- pivots ---
  const long nm = static_cast<long>(n) * m;
  const long block = std::min(nm, std::max<long>(16, static_cast<long>(4 * std::sqrt(static_cast<double>(nm)))));
  const double tol = 1e-12 * std::max(1.0, max_cost);
  if (max_pivots <= 0) max_pivots = 1000L * N + 100000;
  long next = 0, pivots = 0;
  sol.converged = true;
  std::vector<int>& moved = ws.moved;
  while (true) {
    // block search pricing: the most negative reduced cost in the first block that has one
    long best_e = -1;
    double best_rc = -tol;
    for (long seen = 0; seen < nm && best_e < 0; seen += block) {
      const long count = std::min(block, nm - seen);
      const double mn = simd::price_block(C, n, m, pot.data(), pot.data() + n, next, count, -tol, best_e);
      if (best_e >= 0) best_rc = mn;
      next = (next + count) % nm;
    }
    if (best_e < 0) break;
    if (++pivots > max_pivots) {
      sol.converged = false;
      break;
    }
    const int r = static_cast<int>(best_e / m), c = n + static_cast<int>(best_e % m);
    // cycle: r -> c (entering, +delta), then the tree path c .. join .. r; on both sides the arcs whose flow
    // decreases are those hanging from a row on r's side and from a column on c's side. Ties: the last blocking
    // arc in the cycle's direction from the join (Cunningham's rule, harmless under the perturbation).
    // Both paths are recorded once (rpath: r up to below the join, cpath: c likewise) and reused below.
    std::vector<int>& rpath = ws.rpath;
    std::vector<int>& cpath = ws.cpath;
    rpath.clear();
    cpath.clear();
    double delta = std::numeric_limits<double>::infinity();
    int leave_at = -1;
    bool leave_on_r_side = false;
    int x = r;
    for (; !is_ancestor(x, c); x = parent[x]) {
      if (x < n && flow[x] < delta)
        delta = flow[x], leave_at = static_cast<int>(rpath.size()), leave_on_r_side = true;
      rpath.push_back(x);
    }
    const int join = x;
    for (x = c; x != join; x = parent[x]) {
      if (x >= n && flow[x] <= delta)
        delta = flow[x], leave_at = static_cast<int>(cpath.size()), leave_on_r_side = false;
      cpath.push_back(x);
    }
    {
      const double on_r[2] = {-delta, delta}, on_c[2] = {delta, -delta};  // indexed by "is a column"
      for (const int z : rpath) flow[z] += on_r[z >= n];
      for (const int z : cpath) flow[z] += on_c[z >= n];
    }

    // the subtree S below the leaving arc is re-rooted at the entering endpoint `sub` and hung from `top`; the
    // stem sub .. leave is the start of sub's path, the ancestors that lose S the rest of it, those that gain
    // S the whole other path
    std::vector<int>& stem = leave_on_r_side ? rpath : cpath;
    const std::vector<int>& other = leave_on_r_side ? cpath : rpath;
    const int sub = stem[0], top = leave_on_r_side ? c : r, leave = stem[leave_at];
    const int L = size[leave], p = pos[leave];
    for (std::size_t t = leave_at + 1; t < stem.size(); ++t) size[stem[t]] -= L;
    for (const int z : other) size[z] += L;
    stem.resize(leave_at + 1);
    // new preorder of S: all of sub's old range, then each stem node's old range minus its predecessor's
    moved.resize(L);
    {
      int k = 0;
      auto take = [&](int from, int to) {
        std::copy(order.begin() + from, order.begin() + to, moved.begin() + k);
        k += to - from;
      };
      take(pos[sub], pos[sub] + size[sub]);
      for (std::size_t t = 1; t < stem.size(); ++t) {
        const int z = stem[t], below = stem[t - 1];
        take(pos[z], pos[below]);
        take(pos[below] + size[below], pos[z] + size[z]);
      }
      // stem sizes in the re-rooted S (old sizes read before they are overwritten, deepest first)
      for (std::size_t t = stem.size(); t-- > 1;) size[stem[t]] = L - size[stem[t - 1]];
      size[sub] = L;
    }
    // reverse the stem: parents and the flows stored at the children
    {
      int prev = top;
      double prev_flow = delta;
      for (const int z : stem) {
        const double f = flow[z];
        parent[z] = prev;
        flow[z] = prev_flow;
        prev = z;
        prev_flow = f;
      }
    }
    // splice S into the preorder right after top and renumber the shifted range
    const int q = pos[top];
    int lo, dst;
    if (q < p) {
      std::copy_backward(order.begin() + q + 1, order.begin() + p, order.begin() + p + L);
      dst = q + 1;
      lo = q + 1 + L;
      std::copy(moved.begin(), moved.end(), order.begin() + dst);
      for (int k = lo; k < p + L; ++k) pos[order[k]] = k;
    } else {
      std::copy(order.begin() + p + L, order.begin() + q + 1, order.begin() + p);
      dst = q + 1 - L;
      std::copy(moved.begin(), moved.end(), order.begin() + dst);
      for (int k = p; k < dst; ++k) pos[order[k]] = k;
    }
    // positions and potentials of S: rows and columns move by -rc / +rc (or the reverse) to zero the entering arc
    const double shift[2] = {sub < n ? best_rc : -best_rc, sub < n ? -best_rc : best_rc};  // row, column
    for (int k = 0; k < L; ++k) {
      const int z = moved[k];
      pos[z] = dst + k;
      pot[z] += shift[z >= n];  // branch-free: rows and columns alternate unpredictably
    }
  }
  sol.pivots = pivots;

  // --- exact flows of the final tree for the unperturbed weights (leaves first: reverse preorder) ---
  std::vector<double>& excess = ws.supply;  // reuse
  excess.resize(N);
  for (int i = 0; i < n; ++i) excess[i] = a[i];
  for (int j = 0; j < m; ++j) excess[n + j] = -b[j];
  sol.arc_row.clear();
  sol.arc_col.clear();
  sol.arc_flow.clear();
  sol.cost = 0;
  for (int k = N; k-- > 1;) {
    const int z = order[k], p = parent[z];
    const double f = std::max(0.0, z < n ? excess[z] : -excess[z]);
    excess[p] += excess[z];
    const int i = z < n ? z : p, j = (z < n ? p : z) - n;
    sol.arc_row.push_back(i);
    sol.arc_col.push_back(j);
    sol.arc_flow.push_back(f);
    sol.cost += f * C[static_cast<long>(i) * m + j];
  }
  sol.u.assign(pot.begin(), pot.begin() + n);
  sol.v.assign(pot.begin() + n, pot.end());
}

/// @brief Minimum-cost perfect matching on a dense n x n cost matrix (shortest augmenting paths with dual
/// updates, the Jonker-Volgenant / Crouse scheme). Fills col4row and the duals u, v (u_i + v_j <= C_ij, equality
/// on the matching); returns the matched cost sum.
inline double assignment(int n, const double* C, std::vector<int>& col4row, std::vector<double>& u,
                         std::vector<double>& v, transport_workspace& ws) {
  const double inf = std::numeric_limits<double>::infinity();
  u.assign(n, 0.0);
  v.assign(n, 0.0);
  col4row.assign(n, -1);
  ws.row4col.assign(n, -1);
  ws.path.assign(n, -1);
  ws.shortest.resize(n);
  ws.sr.resize(n);
  ws.sc.resize(n);
  ws.remaining.resize(n);
  // column reduction start: v_j = min_i C_ij keeps u + v <= C and shortens the searches
  for (int j = 0; j < n; ++j) v[j] = inf;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) v[j] = std::min(v[j], C[static_cast<long>(i) * n + j]);
  for (int cur = 0; cur < n; ++cur) {
    std::fill(ws.shortest.begin(), ws.shortest.end(), inf);
    std::fill(ws.sr.begin(), ws.sr.end(), 0);
    std::fill(ws.sc.begin(), ws.sc.end(), 0);
    int num_rem = n;
    for (int k = 0; k < n; ++k) ws.remaining[k] = n - 1 - k;
    double min_val = 0;
    int i = cur, sink = -1;
    while (sink == -1) {
      ws.sr[i] = 1;
      const double* Ci = C + static_cast<long>(i) * n;
      int index = -1;
      double lowest = inf;
      for (int k = 0; k < num_rem; ++k) {
        const int j = ws.remaining[k];
        const double rr = min_val + Ci[j] - u[i] - v[j];
        if (rr < ws.shortest[j]) ws.path[j] = i, ws.shortest[j] = rr;
        if (ws.shortest[j] < lowest || (ws.shortest[j] == lowest && ws.row4col[j] == -1))
          lowest = ws.shortest[j], index = k;
      }
      if (index < 0) index = 0;  // infinite costs only; cannot happen for finite C
      min_val = lowest;
      const int j = ws.remaining[index];
      if (ws.row4col[j] == -1)
        sink = j;
      else
        i = ws.row4col[j];
      ws.sc[j] = 1;
      ws.remaining[index] = ws.remaining[--num_rem];
    }
    u[cur] += min_val;
    for (int r = 0; r < n; ++r)
      if (ws.sr[r] && r != cur) u[r] += min_val - ws.shortest[col4row[r]];
    for (int j = 0; j < n; ++j)
      if (ws.sc[j]) v[j] -= min_val - ws.shortest[j];
    int j = sink;
    while (true) {
      const int r = ws.path[j];
      ws.row4col[j] = r;
      std::swap(col4row[r], j);
      if (r == cur) break;
    }
  }
  double total = 0;
  for (int i = 0; i < n; ++i) total += C[static_cast<long>(i) * n + col4row[i]];
  return total;
}

}  // namespace hepgnn::detail
