import BNCore

extension CaseSpec {
    /// Checks case.json's array lists against the operation's table (``Operation/arrays``): every
    /// input of the operation and nothing else; the operation's outputs, or none for a case the
    /// profile must refuse. `path` names the case in errors.
    public func validateArrayLists(path: String) throws {
        let wantInputs = Set(op.inputs.map(\.name)), wantOutputs = Set(op.outputs.map(\.name))
        func names(_ s: Set<String>) -> String { s.sorted().joined(separator: ", ") }
        guard Set(inputs.keys) == wantInputs else {
            throw BNError.corrupt(path: path, reason: "a \(op.rawValue) case has inputs \(names(wantInputs)), case.json lists \(names(Set(inputs.keys)))")
        }
        let outs = Set(outputs.keys)
        guard outs == wantOutputs || (outs.isEmpty && expectError != nil) else {
            throw BNError.corrupt(path: path, reason: "a \(op.rawValue) case has outputs \(names(wantOutputs)), case.json lists \(names(outs))")
        }
    }
}

extension GoldenStore.LoadedCase {
    /// Checks every array against the table and case.json, so that nothing computes on a
    /// malformed case (no index out of range, ever): each input and expected array present has
    /// the length its extent implies (e.g. `steps` × the tensor for a trajectory's x) and, with
    /// `dtypes`, the NPY shape (``ArraySpec/dimensions(in:shape:)``) and dtype its element implies (inputs: storage or parameter dtype; expected
    /// outputs: float64); every input the operation reads is present. `path` names the case.
    ///
    /// ``GoldenStore/loadCase(_:id:manifest:)`` runs it with `dtypes` before returning a case;
    /// the judge runs it (lengths) on cases built in memory.
    public func validateArrays(dtypes: Bool, path: String) throws {
        let s = try spec.shapeValue()
        for a in spec.op.inputs where inputs[a.name] == nil {
            throw BNError.corrupt(path: path, reason: "input '\(a.name)' is missing")
        }
        for (role, arrays) in [(ArraySpec.Role.input, inputs), (.output, expected)] {
            for name in arrays.keys.sorted() {
                let array = arrays[name]!
                let what = role == .input ? "input" : "expected"
                guard let a = (role == .input ? spec.op.input(name) : spec.op.output(name)) else {
                    throw BNError.corrupt(path: path, reason: "a \(spec.op.rawValue) case has no \(role.rawValue) '\(name)'")
                }
                let file = (role == .input ? spec.inputs[name] : spec.outputs[name]) ?? a.file
                let want = a.count(in: spec, shape: s)
                guard array.values.count == want else {
                    throw BNError.corrupt(path: "\(path)/\(file)", reason: "\(what) '\(name)' has \(array.values.count) values, case.json implies \(want) (\(a.extent.rawValue) of shape \(s)\(a.extent == .stepsTensor || a.extent == .stepsChannels ? ", \(spec.steps) steps" : ""))")
                }
                // A header shape with the right count but other dimensions is a tampered or
                // foreign file (other tools read the shape): golden files carry the table's.
                let dims = a.dimensions(in: spec, shape: s)
                guard !dtypes || array.shape == dims else {
                    throw BNError.corrupt(path: "\(path)/\(file)", reason: "\(what) '\(name)' has shape \(array.shape), case.json implies \(dims)")
                }
                let dtype = a.goldenDType(in: spec)
                guard !dtypes || array.dtype == dtype else {
                    throw BNError.corrupt(path: "\(path)/\(file)", reason: "\(what) '\(name)' is \(array.dtype.rawValue) (\(array.dtype.npyDescr)), case.json implies \(dtype.rawValue) (\(dtype.npyDescr))")
                }
            }
        }
    }
}
