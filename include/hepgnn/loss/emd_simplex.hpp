#pragma once
/// @file emd_simplex.hpp
/// @brief Exact solvers behind hepgnn::emd: a network (transportation) simplex for general weights and a
/// shortest-augmenting-path (Jonker-Volgenant style) assignment solver for equal-size uniform weights.
/// Both work in double on a dense row-major cost matrix and return the optimal flow and dual potentials.

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "hepgnn/simd/arch.hpp"


namespace hepgnn::detail {

/// @brief Reusable buffers of the transportation simplex (one per thread; no allocation once warm).
struct transport_workspace {
  std::vector<double> supply, demand, pot, flow, key, offset;
  std::vector<int> parent, depth, stack, order, first_child, next_sibling, prev_sibling, adj_off, adj_arc;
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

/// @brief min over j in [j0, j1) of c[j] - v[j] (SIMD), and the first j attaining it in *arg when requested.
inline double min_difference(const double* c, const double* v, int j0, int j1, int* arg) {
  constexpr int W = simd::lanes<double, simd::native>();
  double mn = std::numeric_limits<double>::infinity();
  int j = j0;
  if constexpr (W > 1) {
    using B = xsimd::batch<double, simd::native>;
    if (j1 - j0 >= W) {
      B acc(std::numeric_limits<double>::infinity());
      for (; j + W <= j1; j += W) acc = xsimd::min(acc, B::load_unaligned(c + j) - B::load_unaligned(v + j));
      alignas(64) double buf[W];
      acc.store_aligned(buf);
      for (int l = 0; l < W; ++l) mn = buf[l] < mn ? buf[l] : mn;
    }
  }
  for (; j < j1; ++j) {
    const double t = c[j] - v[j];
    mn = t < mn ? t : mn;
  }
  if (arg) {  // the same subtraction, so the minimum is found bit for bit
    for (j = j0; j < j1 && !(c[j] - v[j] == mn); ++j) {
    }
    *arg = j < j1 ? j : j0;
  }
  return mn;
}

/// @brief Most negative c_j - v_j - ui over j in [j0, j1), if below `best`: updates best and arg.
inline void price_segment(const double* Ci, const double* v, double ui, int j0, int j1, double& best, long& arg,
                          long row_base) {
  const double mn = min_difference(Ci, v, j0, j1, nullptr);
  if (mn - ui < best) {
    int j = 0;
    min_difference(Ci, v, j0, j1, &j);
    best = mn - ui;
    arg = row_base + j;
  }
}

/// @brief min <F, C> s.t. F 1 = a, F^T 1 = b, F >= 0, by the network simplex on the complete bipartite graph.
///
/// Requires n, m >= 1, a, b >= 0 with equal sums (up to rounding; the difference is absorbed by the last demand).
/// Starts from a row-minimum basis, rows taken in decreasing Vogel regret (each step exhausts exactly one row or column, so the basis is a spanning
/// tree), prices arcs by block search (block ~ 2 sqrt(n m); LEMON uses sqrt), and keeps parents, child lists,
/// depths and potentials of the rooted tree, updating only the subtree that moves. Degeneracy is avoided by
/// Orden's perturbation (a_i + eps, b_m + n eps); the final flows are recomputed on the optimal tree from the
/// unperturbed weights.
inline void transport_simplex(int n, int m, const double* C, const double* a, const double* b,
                              transport_solution& sol, transport_workspace& ws, long max_pivots = 0) {
  const int N = n + m;
  double total = 0, max_cost = 0;
  for (int i = 0; i < n; ++i) total += a[i];
  for (long e = 0; e < static_cast<long>(n) * m; ++e) max_cost = std::max(max_cost, std::abs(C[e]));
  const double eps = 1e-12 * (total > 0 ? total : 1.0);
  ws.supply.assign(a, a + n);
  ws.demand.assign(b, b + m);
  for (int i = 0; i < n; ++i) ws.supply[i] += eps;
  double sa = 0, sb = 0;
  for (int i = 0; i < n; ++i) sa += ws.supply[i];
  for (int j = 0; j < m - 1; ++j) sb += ws.demand[j];
  ws.demand[m - 1] = std::max(0.0, sa - sb);

  // --- initial basis: row-minimum rule, exactly one line eliminated per step (n + m - 1 arcs) ---
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
  // rows with the largest regret (second-cheapest minus cheapest column) choose first, as in Vogel's rule
  ws.order.resize(n);
  ws.key.resize(n);
  for (int i = 0; i < n; ++i) {
    const double* Ci = C + static_cast<long>(i) * m;
    double m1 = std::numeric_limits<double>::infinity(), m2 = m1;
    for (int j = 0; j < m; ++j) {
      const double c = Ci[j];
      m2 = std::min(m2, std::max(m1, c));
      m1 = std::min(m1, c);
    }
    ws.key[i] = m < 2 ? 0.0 : m2 - m1;
    ws.order[i] = i;
  }
  std::sort(ws.order.begin(), ws.order.end(),
            [&](int x, int y) { return ws.key[x] > ws.key[y] || (ws.key[x] == ws.key[y] && x < y); });
  const double dead = -std::numeric_limits<double>::infinity();
  for (int step = 0; step < n; ++step) {
    const int i = ws.order[step];
    const double* Ci = C + static_cast<long>(i) * m;
    if (step == n - 1) {
      for (int j = 0; j < m; ++j)
        if (ws.offset[j] != dead) add_arc(i, j, std::max(0.0, d[j]));
      break;
    }
    while (true) {
      int best = 0;
      min_difference(Ci, ws.offset.data(), 0, m, &best);
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

  // --- root the tree at row 0: parents, child lists, depths, flows stored at the child, potentials ---
  std::vector<int>& parent = ws.parent;
  std::vector<int>& depth = ws.depth;
  std::vector<double>& pot = ws.pot;
  std::vector<double>& flow = ws.flow;
  std::vector<int>& first = ws.first_child;
  std::vector<int>& next_sib = ws.next_sibling;
  std::vector<int>& prev_sib = ws.prev_sibling;
  parent.assign(N, -1);
  depth.assign(N, 0);
  pot.assign(N, 0.0);
  flow.assign(N, 0.0);
  first.assign(N, -1);
  next_sib.assign(N, -1);
  prev_sib.assign(N, -1);
  auto cost_of = [&](int x, int y) {  // x, y: one row node and one column node
    return x < n ? C[static_cast<long>(x) * m + (y - n)] : C[static_cast<long>(y) * m + (x - n)];
  };
  auto link = [&](int child, int p) {  // child becomes the first child of p
    parent[child] = p;
    prev_sib[child] = -1;
    next_sib[child] = first[p];
    if (first[p] >= 0) prev_sib[first[p]] = child;
    first[p] = child;
  };
  auto unlink = [&](int child) {
    const int p = parent[child];
    if (prev_sib[child] >= 0)
      next_sib[prev_sib[child]] = next_sib[child];
    else
      first[p] = next_sib[child];
    if (next_sib[child] >= 0) prev_sib[next_sib[child]] = prev_sib[child];
  };
  {
    // CSR adjacency of the initial arcs, then a BFS from the root
    const int A = static_cast<int>(sol.arc_row.size());
    ws.adj_off.assign(N + 1, 0);
    for (int k = 0; k < A; ++k) ++ws.adj_off[sol.arc_row[k] + 1], ++ws.adj_off[n + sol.arc_col[k] + 1];
    for (int x = 0; x < N; ++x) ws.adj_off[x + 1] += ws.adj_off[x];
    ws.adj_arc.resize(2 * A);
    ws.stack.assign(ws.adj_off.begin(), ws.adj_off.end() - 1);
    for (int k = 0; k < A; ++k) ws.adj_arc[ws.stack[sol.arc_row[k]]++] = k, ws.adj_arc[ws.stack[n + sol.arc_col[k]]++] = k;
    ws.order.clear();
    ws.order.push_back(0);
    ws.alive.assign(N, 0);
    ws.alive[0] = 1;
    for (std::size_t q = 0; q < ws.order.size(); ++q) {
      const int x = ws.order[q];
      for (int t = ws.adj_off[x]; t < ws.adj_off[x + 1]; ++t) {
        const int k = ws.adj_arc[t];
        const int y = x < n ? n + sol.arc_col[k] : sol.arc_row[k];
        if (ws.alive[y]) continue;
        ws.alive[y] = 1;
        link(y, x);
        depth[y] = depth[x] + 1;
        pot[y] = cost_of(x, y) - pot[x];
        flow[y] = sol.arc_flow[k];
        ws.order.push_back(y);
      }
    }
  }

  // --- pivots ---
  const long nm = static_cast<long>(n) * m;
  const long block = std::min(nm, std::max<long>(16, static_cast<long>(2 * std::sqrt(static_cast<double>(nm)))));
  const double tol = 1e-12 * std::max(1.0, max_cost);
  if (max_pivots <= 0) max_pivots = 1000L * N + 100000;
  long next = 0, pivots = 0;
  sol.converged = true;
  while (true) {
    // block search pricing: the most negative reduced cost in the first block that has one
    long best_e = -1;
    double best_rc = -tol;
    {
      int i = static_cast<int>(next / m), j = static_cast<int>(next % m);
      long seen = 0, in_block = 0;
      const double* v = pot.data() + n;
      while (seen < nm) {
        const int jend = static_cast<int>(std::min<long>(m, j + std::min(block - in_block, nm - seen)));
        price_segment(C + static_cast<long>(i) * m, v, pot[i], j, jend, best_rc, best_e, static_cast<long>(i) * m);
        const int done = jend - j;
        seen += done;
        in_block += done;
        j = jend;
        if (j == m) {
          j = 0;
          if (++i == n) i = 0;
        }
        if (in_block >= block) {
          if (best_e >= 0) break;
          in_block = 0;
        }
      }
      next = static_cast<long>(i) * m + j;
    }
    if (best_e < 0) break;
    if (++pivots > max_pivots) {
      sol.converged = false;
      break;
    }
    const int r = static_cast<int>(best_e / m), c = n + static_cast<int>(best_e % m);
    // cycle: r -> c (entering, +delta), then the tree path c .. join .. r
    double delta = std::numeric_limits<double>::infinity();
    int leave = -1;
    bool leave_on_r_side = false;
    int x = r, y = c;
    while (x != y) {
      if (depth[x] >= depth[y]) {
        if (x < n && flow[x] < delta) delta = flow[x], leave = x, leave_on_r_side = true;
        x = parent[x];
      } else {
        if (y >= n && flow[y] < delta) delta = flow[y], leave = y, leave_on_r_side = false;
        y = parent[y];
      }
    }
    const int join = x;
    for (x = r; x != join; x = parent[x]) flow[x] += x < n ? -delta : delta;
    for (y = c; y != join; y = parent[y]) flow[y] += y >= n ? -delta : delta;

    // re-hang the subtree below the leaving arc from the entering arc (reverse the stem sub .. leave)
    const int sub = leave_on_r_side ? r : c, top = leave_on_r_side ? c : r;
    {
      int prev = top, cur = sub;
      double prev_flow = delta;
      while (true) {
        const int nxt = parent[cur];
        const double f = flow[cur];
        unlink(cur);
        link(cur, prev);
        flow[cur] = prev_flow;
        if (cur == leave) break;
        prev = cur;
        prev_flow = f;
        cur = nxt;
      }
    }
    // potentials and depths of the moved subtree (preorder walk over the child lists)
    const bool sub_is_col = sub >= n;
    const double rc = best_rc;
    int z = sub;
    depth[sub] = depth[top] + 1;
    while (true) {
      pot[z] += ((z >= n) == sub_is_col) ? rc : -rc;
      if (z != sub) depth[z] = depth[parent[z]] + 1;
      if (first[z] >= 0) {
        z = first[z];
        continue;
      }
      while (z != sub && next_sib[z] < 0) z = parent[z];
      if (z == sub) break;
      z = next_sib[z];
    }
  }
  sol.pivots = pivots;

  // --- exact flows of the final tree for the unperturbed weights (leaves first) ---
  ws.order.clear();
  ws.order.push_back(0);
  for (std::size_t k = 0; k < ws.order.size(); ++k)
    for (int w = first[ws.order[k]]; w >= 0; w = next_sib[w]) ws.order.push_back(w);
  std::vector<double>& excess = ws.supply;  // reuse
  excess.resize(N);
  for (int i = 0; i < n; ++i) excess[i] = a[i];
  for (int j = 0; j < m; ++j) excess[n + j] = -b[j];
  sol.arc_row.clear();
  sol.arc_col.clear();
  sol.arc_flow.clear();
  sol.cost = 0;
  for (std::size_t k = ws.order.size(); k-- > 1;) {
    const int z = ws.order[k], p = parent[z];
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
