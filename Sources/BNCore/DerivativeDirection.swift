/// A direction (tangent) in BN's input space (spec/SPEC.md §12): a perturbation of x (in x's
/// layout) and of the per-channel γ and β. y is linear in β, so β's component drops out of
/// every second and third derivative; it is carried for the first-order term and for adapters'
/// inputs (v_beta, w_beta).
public struct DerivativeDirection: Sendable, Equatable {
    public var x: [Double]
    public var gamma: [Double]
    public var beta: [Double]

    public init(x: [Double], gamma: [Double], beta: [Double]) {
        self.x = x; self.gamma = gamma; self.beta = beta
    }

    /// A direction in x only (γ and β components 0).
    public init(x: [Double], channels: Int) {
        self.init(x: x, gamma: [Double](repeating: 0, count: channels), beta: [Double](repeating: 0, count: channels))
    }
}

/// H·v for the loss L = ⟨dy, y⟩ in the variables (x, γ, β), split like them (spec §12.3).
public struct HessianVectorProduct: Sendable, Equatable {
    public var x: [Double]
    public var gamma: [Double]
    /// 0 for every honest implementation: L is linear in β, and ∂L/∂β = Σdy depends on nothing.
    public var beta: [Double]

    public init(x: [Double], gamma: [Double], beta: [Double]) {
        self.x = x; self.gamma = gamma; self.beta = beta
    }
}
