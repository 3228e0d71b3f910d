import BNCore

extension CaseSpec {
    /// This case under another profile's conventions (spec/AUDIT.md §1): the same id, operation,
    /// shape, layout, dtype, data, eps, steps, batch weight w, partition and gradient reduction; the target's momentum (w in its
    /// convention, for reports and adapters), running-variance estimator and single-value policy
    /// (hence its refusal). No text is parsed: w is carried, never converted back and forth, so a
    /// pytorch case with momentum 0.1 audited as keras keeps w = 0.1 exactly (momentum 0.9).
    /// A target that writes its momentum in the same direction keeps this case's momentum as written.
    ///
    /// A target that holds its attributes in float32 (ONNX, ``BNCore/ConventionProfile/attributeFormat``)
    /// gets eps and its momentum rounded to float32, and w from that momentum (exact for a
    /// momentum in [0.5, 1]): the values such a framework can hold. Other targets keep them as written.
    public func retargeted(to target: ConventionProfile) throws -> CaseSpec {
        let sameDirection = try profileValue().momentumWeighting == target.momentumWeighting
        var w = batchWeight, m = sameDirection ? momentum : nil
        if target.attributeFormat != .f64, let w0 = w {
            let held = target.attribute(m ?? target.momentumWeighting.momentum(batchWeight: w0))
            m = held; w = target.momentumWeighting.batchWeight(momentum: held)
        }
        return try CaseSpec(id: id, op: op, shape: shapeValue(), layout: layout, dtype: dtype, data: data, profile: target,
                            eps: target.attribute(eps), batchWeight: w, momentum: m, steps: steps,
                            partition: partitionValue(), gradReduction: gradReduction, repro: "")
    }

    /// Whether the reference's outputs for this case are the same under `target`: they depend on
    /// w (kept unless the target rounds its attributes), eps, the running-variance estimator and the
    /// single-value policy, not on the direction in which a profile writes its momentum.
    public func hasSameExpectedOutputs(as target: ConventionProfile) throws -> Bool {
        let p = try profileValue()
        return p.runningVariance == target.runningVariance && p.singleValue == target.singleValue
            && target.attribute(eps) == eps && (batchWeight.map { target.attribute(target.momentumWeighting.momentum(batchWeight: $0)) == target.momentumWeighting.momentum(batchWeight: $0) } ?? true)
    }
}

extension GoldenStore.LoadedCase {
    /// The case re-targeted at `target` (``CaseSpec/retargeted(to:)``) with the same inputs. Its
    /// expected outputs are the golden files when the target's conventions give the same
    /// reference outputs (``CaseSpec/hasSameExpectedOutputs(as:)``), else the reference's under the
    /// target.
    public func retargeted(to target: ConventionProfile) throws -> GoldenStore.LoadedCase {
        let spec = try self.spec.retargeted(to: target)
        let same = try self.spec.hasSameExpectedOutputs(as: target)
        return GoldenStore.LoadedCase(spec: spec, inputs: inputs, expected: same ? expected : try Generator.expected(spec, inputs))
    }
}
