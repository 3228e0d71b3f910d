import BNCore
import BNGolden
import BNReference

// Support for the higher-order laws (LawsOfHigherOrder.swift): three independent AD
// formulations of BN's derivatives written over a generic number type — forward mode (dual
// numbers), reverse mode that records its own adjoint computation (so it can be
// differentiated again). Their tolerance is spec §12.6's bound (BNGolden's HigherOrderBound).

// MARK: - Numbers

/// What BN's forward pass and its §2 backward need from a number type.
protocol ADNumber {
    init(_ value: Double)
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
    static func * (a: Self, b: Self) -> Self
    static func / (a: Self, b: Self) -> Self
    func squareRoot() -> Self
}

extension Double: ADNumber {}

/// A dual number v + t·ε (ε² = 0): forward-mode AD; nest for higher orders.
struct Dual<T: ADNumber>: ADNumber {
    var v: T
    var t: T
    init(_ v: T, _ t: T) { self.v = v; self.t = t }
    init(_ value: Double) { v = T(value); t = T(0) }
    static func + (a: Dual, b: Dual) -> Dual { Dual(a.v + b.v, a.t + b.t) }
    static func - (a: Dual, b: Dual) -> Dual { Dual(a.v - b.v, a.t - b.t) }
    static func * (a: Dual, b: Dual) -> Dual { Dual(a.v * b.v, a.v * b.t + a.t * b.v) }
    static func / (a: Dual, b: Dual) -> Dual {
        let q = a.v / b.v
        return Dual(q, (a.t - q * b.t) / b.v)
    }
    func squareRoot() -> Dual {
        let s = v.squareRoot()
        return Dual(s, t / (s + s))
    }
}

/// A node of a recorded computation (reverse mode). ``gradient(of:wrt:)`` records the adjoint
/// computation as new nodes, so a gradient can itself be differentiated (reverse-over-reverse,
/// what `create_graph=True` does in PyTorch).
final class Node: ADNumber {
    enum Op { case leaf, add, sub, mul, div, sqrt }
    let op: Op
    let inputs: [Node]
    let value: Double
    let id: Int

    nonisolated(unsafe) private static var counter = 0
    private init(_ op: Op, _ inputs: [Node], _ value: Double) {
        self.op = op; self.inputs = inputs; self.value = value
        Node.counter += 1; id = Node.counter
    }
    convenience init(_ value: Double) { self.init(.leaf, [], value) }

    static func + (a: Node, b: Node) -> Node { Node(.add, [a, b], a.value + b.value) }
    static func - (a: Node, b: Node) -> Node { Node(.sub, [a, b], a.value - b.value) }
    static func * (a: Node, b: Node) -> Node { Node(.mul, [a, b], a.value * b.value) }
    static func / (a: Node, b: Node) -> Node { Node(.div, [a, b], a.value / b.value) }
    func squareRoot() -> Node { Node(.sqrt, [self], value.squareRoot()) }

    /// ∂output/∂wrtₖ as nodes (reverse accumulation in decreasing creation order).
    static func gradient(of output: Node, wrt: [Node]) -> [Node] {
        var order: [Node] = [], seen = Set<ObjectIdentifier>()
        var stack = [output]
        while let n = stack.popLast() {
            guard seen.insert(ObjectIdentifier(n)).inserted else { continue }
            order.append(n); stack.append(contentsOf: n.inputs)
        }
        order.sort { $0.id > $1.id }
        var adj: [ObjectIdentifier: Node] = [ObjectIdentifier(output): Node(1)]
        func add(_ n: Node, _ g: Node) {
            let k = ObjectIdentifier(n)
            adj[k] = adj[k].map { $0 + g } ?? g
        }
        for n in order {
            guard let g = adj[ObjectIdentifier(n)] else { continue }
            switch n.op {
            case .leaf: break
            case .add: add(n.inputs[0], g); add(n.inputs[1], g)
            case .sub: add(n.inputs[0], g); add(n.inputs[1], Node(0) - g)
            case .mul: add(n.inputs[0], g * n.inputs[1]); add(n.inputs[1], g * n.inputs[0])
            case .div: add(n.inputs[0], g / n.inputs[1]); add(n.inputs[1], Node(0) - g * n / n.inputs[1])
            case .sqrt: add(n.inputs[0], g / (n + n))
            }
        }
        return wrt.map { adj[ObjectIdentifier($0)] ?? Node(0) }
    }
}

// MARK: - BN over any number type (two-pass statistics, §2)

enum GenericBN {
    /// Training forward y = γ·(x − μ)/√(σ² + ε) + β.
    static func forward<T: ADNumber>(_ x: [T], gamma: [T], beta: [T], eps: Double, shape: Shape, layout: Layout) -> [T] {
        var y = x
        let n = T(Double(shape.perChannelCount))
        for c in 0..<shape.channels {
            let idx = indices(c, shape, layout)
            let (mu, r) = statistics(x, idx, n, eps)
            for i in idx { y[i] = gamma[c] * ((x[i] - mu) * r) + beta[c] }
        }
        return y
    }

    /// The §2 training backward: dβ = Σdy, dγ = Σdy·x̂, dx = γ·r·(dy − dβ/n − x̂·dγ/n).
    static func backward<T: ADNumber>(_ x: [T], dy: [T], gamma: [T], eps: Double, shape: Shape, layout: Layout)
        -> (dx: [T], dGamma: [T], dBeta: [T])
    {
        var dx = x, dg = [T](repeating: T(0), count: shape.channels), db = dg
        let n = T(Double(shape.perChannelCount))
        for c in 0..<shape.channels {
            let idx = indices(c, shape, layout)
            let (mu, r) = statistics(x, idx, n, eps)
            for i in idx { db[c] = db[c] + dy[i]; dg[c] = dg[c] + dy[i] * ((x[i] - mu) * r) }
            let k = gamma[c] * r, mb = db[c] / n, mg = dg[c] / n
            for i in idx { dx[i] = k * (dy[i] - mb - ((x[i] - mu) * r) * mg) }
        }
        return (dx, dg, db)
    }

    /// Two-pass μ and r = 1/√(mean((x − μ)²) + ε) of one channel.
    static func statistics<T: ADNumber>(_ x: [T], _ idx: [Int], _ n: T, _ eps: Double) -> (mu: T, r: T) {
        var s = T(0)
        for i in idx { s = s + x[i] }
        let mu = s / n
        var q = T(0)
        for i in idx { let d = x[i] - mu; q = q + d * d }
        return (mu, T(1) / (q / n + T(eps)).squareRoot())
    }

    static func indices(_ c: Int, _ shape: Shape, _ layout: Layout) -> [Int] {
        layout.segments(channel: c, shape: shape).flatMap { s in (0..<s.count).map { s.offset + $0 * s.stride } }
    }
}

// MARK: - The three formulations of H·v and D²y

enum Formulations {
    /// Forward-over-reverse: the §2 backward on dual numbers along v: H·v = its tangent.
    static func forwardOverReverse(_ x: [Double], dy: [Double], gamma: [Double], eps: Double, shape: Shape, layout: Layout,
                                   v: DerivativeDirection) -> [Double] {
        let xd = zip(x, v.x).map { Dual($0, $1) }, gd = zip(gamma, v.gamma).map { Dual($0, $1) }
        let b = GenericBN.backward(xd, dy: dy.map { Dual($0) }, gamma: gd, eps: eps, shape: shape, layout: layout)
        return b.dx.map(\.t) + b.dGamma.map(\.t) + b.dBeta.map(\.t)
    }

    /// Reverse-over-reverse: record L = ⟨dy, y⟩, take its gradient g as a recorded computation,
    /// then the gradient of ⟨g, v⟩ (double backward).
    static func reverseOverReverse(_ x: [Double], dy: [Double], gamma: [Double], beta: [Double], eps: Double, shape: Shape,
                                   layout: Layout, v: DerivativeDirection) -> [Double] {
        let xn = x.map { Node($0) }, gn = gamma.map { Node($0) }, bn = beta.map { Node($0) }
        let y = GenericBN.forward(xn, gamma: gn, beta: bn, eps: eps, shape: shape, layout: layout)
        var loss = Node(0)
        for (yi, d) in zip(y, dy) { loss = loss + yi * Node(d) }
        let leaves = xn + gn + bn
        let g = Node.gradient(of: loss, wrt: leaves)
        var dot = Node(0)
        for (gi, vi) in zip(g, v.x + v.gamma + v.beta) { dot = dot + gi * Node(vi) }
        return Node.gradient(of: dot, wrt: leaves).map(\.value)
    }

    /// Forward-over-forward: y on nested duals along v and w; the inner-outer tangent is D²y[v, w].
    static func forwardOverForward(_ x: [Double], gamma: [Double], beta: [Double], eps: Double, shape: Shape, layout: Layout,
                                   v: DerivativeDirection, w: DerivativeDirection) -> [Double] {
        let xd = x.indices.map { Dual(Dual(x[$0], v.x[$0]), Dual(w.x[$0], 0)) }
        let gd = gamma.indices.map { Dual(Dual(gamma[$0], v.gamma[$0]), Dual(w.gamma[$0], 0)) }
        let bd = beta.indices.map { Dual(Dual(beta[$0], v.beta[$0]), Dual(w.beta[$0], 0)) }
        return GenericBN.forward(xd, gamma: gd, beta: bd, eps: eps, shape: shape, layout: layout).map(\.t.t)
    }

    /// Forward³: D³y[u, v, w] on triply nested duals.
    static func forwardCubed(_ x: [Double], gamma: [Double], beta: [Double], eps: Double, shape: Shape, layout: Layout,
                             u: DerivativeDirection, v: DerivativeDirection, w: DerivativeDirection) -> [Double] {
        func lift(_ p: Double, _ a: Double, _ b: Double, _ c: Double) -> Dual<Dual<Dual<Double>>> {
            Dual(Dual(Dual(p, a), Dual(b, 0)), Dual(Dual(c, 0), Dual(0, 0)))
        }
        let xd = x.indices.map { lift(x[$0], u.x[$0], v.x[$0], w.x[$0]) }
        let gd = gamma.indices.map { lift(gamma[$0], u.gamma[$0], v.gamma[$0], w.gamma[$0]) }
        let bd = beta.indices.map { lift(beta[$0], u.beta[$0], v.beta[$0], w.beta[$0]) }
        return GenericBN.forward(xd, gamma: gd, beta: bd, eps: eps, shape: shape, layout: layout).map(\.t.t.t)
    }
}

/// A direction for the laws: x-part from the `normal` family, γ and β parts N(0, 1).
func lawDirection(_ input: LawInput, _ name: String) -> DerivativeDirection {
    let s = input.shape
    var r = SpecRandom("law/\(input.seed)/dir/\(name)")
    return DerivativeDirection(x: try! DataFamily.fill("normal", shape: s, layout: input.layout, dtype: .f64,
                                                     seed: "law/\(input.seed)/\(name)"),
                               gamma: (0..<s.channels).map { _ in r.normal() }, beta: (0..<s.channels).map { _ in r.normal() })
}
