import BNCore

/// golden/README.md: how to use the golden vectors without bnspec. Written by `bnspec generate`
/// from the operation table (``Operation/arrays``), the stored tolerance rule
/// (``ToleranceBudget/storedTolerance(_:dtype:)``) and the suite itself, so it always describes
/// the files beside it; `generate --check` compares it like every other file.
public enum GoldenReadme {
    public static let fileName = "README.md"

    static func shapeText(_ a: ArraySpec) -> String {
        switch a.extent {
        case .tensor: "tensor"
        case .channels: "[C]"
        case .stepsTensor: "[steps] + tensor"
        case .stepsChannels: "[steps, C]"
        case .gradientRows: "[K, C] (grad_reduction local: one row per rank) or [C] (global)"
        }
    }

    static func dtypeText(_ a: ArraySpec) -> String {
        a.role == .output ? "float64 (returned in the \(a.element == .storage ? "storage" : "parameter") dtype)"
            : (a.element == .storage ? "storage dtype" : "parameter dtype")
    }

    /// The README of a golden folder holding `cases` of `suite`.
    public static func text(suite: String, cases: [CaseSpec]) -> String {
        var counts: [String] = []
        for op in Operation.allCases {
            let n = cases.filter { $0.op == op }.count
            if n > 0 { counts.append("\(n) \(op.rawValue)") }
        }
        let refusals = cases.filter { $0.expectError != nil }.count
        var ops = ""
        for op in Operation.allCases {
            ops += "\n### `\(op.rawValue)`\n\n| array | file | role | shape | dtype | required |\n|---|---|---|---|---|---|\n"
            for a in op.arrays {
                let file = a.role == .input ? "`\(a.file)`" : "`\(a.file)`, `tolerance_\(a.name).npy`"
                let required = a.role == .input ? "" : (a.requiredInAudit ? "yes" : "judged when returned")
                ops += "| `\(a.name)` | \(file) | \(a.role.rawValue) | \(shapeText(a)) | \(dtypeText(a)) | \(required) |\n"
            }
        }
        return """
        # BNSpec golden vectors (suite `\(suite)`)

        Written by `bnspec generate --suite \(suite)` from `spec/catalog.txt`; do not edit. Every file, this
        one included, is byte-identical on regeneration (`bnspec generate --check`) and listed with its
        SHA-256 in `manifest.json`. \(cases.count) cases: \(counts.joined(separator: ", ")); \(refusals) of them expect a refusal.

        ## Layout

        ```
        manifest.json             case ids in order, and the SHA-256 of every file
        README.md                 this file
        <case id>/
          case.json               the case: op, logical shape [N, C, spatial…], layout, dtype, data family,
                                  profile, eps, momentum, steps, expect_error, input and output files
          request.json            what to compute: the request of the adapter protocol (spec/AUDIT.md §3)
                                  under the case's own profile, conventions resolved (batch_weight,
                                  variance_estimator, single_value); input paths relative to the case folder
          <input>.npy             the inputs (below)
          expected_<out>.npy      the reference's output, float64
          tolerance_<out>.npy     the tolerance of every element of that output, float64, same shape
          allowed_<out>.json      (only where it applies) other values accepted at some elements
        ```

        ## Dtypes and shapes

        - The storage dtype is case.json's `dtype`: `float64` (NPY `<f8`), `float32` (`<f4`), `float16`
          (`<f2`) or `bfloat16`, which NPY has no type for: stored as `<u2` bit patterns, the upper 16 bits
          of a float32 (value = the float32 whose bits are `pattern << 16`).
        - The parameter dtype (γ, β, statistics) is float32, float64 in float64 cases.
        - Expected outputs and tolerances are always float64. An expected NaN is stored as the quiet NaN
          `0x7ff8000000000000`, whatever NaN the reference's arithmetic produced; inputs may hold NaN and ±Inf
          (the `nonfinite` data family).
        - A tensor is stored in the case's layout: NCHW `[N, C, H, W]`, NHWC `[N, H, W, C]`, NC `[N, C]`
          (spatial dimensions as many as case.json's shape has); per-channel arrays are `[C]`; a trajectory
          stacks its `steps` batches in front. Flat indices below are C-order indices of the stored array.

        ## Arrays of each operation
        \(ops)
        A case whose `expect_error` is set (e.g. `single_value_per_channel`: a training step with one value
        per channel under a profile that raises) has inputs only: the implementation must refuse it.

        ## How to check an output

        An implementation's output passes when every element of it passes:

        1. Round an output stored in the storage dtype (y, dx, y_eval) to the case's dtype, to nearest even
           (bfloat16: round to float32 first, then to bfloat16); returned in that dtype, it already is.
           Outputs in the parameter dtype are compared as returned.
        2. Per element, with `e` from `expected_<out>.npy` and `t` from `tolerance_<out>.npy`:
           - `t` = +Inf: not judged (the bound exceeds the compute format's largest finite value: the
             format cannot resolve the element, spec/SPEC.md §5.4);
           - `e` NaN: the answer must be NaN (any payload), or a value `allowed_<out>.json` lists there;
           - `e` ±Inf: the answer must be the same infinity, or a value listed there;
           - an answer ±Inf to a finite `e` of a storage output passes when `e ± t`, rounded to the case's
             dtype, is that infinity (a reference within tolerance of the format's overflow, §5.3);
           - otherwise `|got − e| ≤ t` (a NaN or infinite answer fails).
        3. A case passes when every required output is returned and passes (outputs judged when returned
           are checked only then), or, when it expects a refusal, when the implementation refuses it.

        `allowed_<out>.json` is `{"format": "bnspec-allowed-1", "output": NAME, "elements": [{"index": I,
        "values": [V, …]}]}`, I a flat index, V a number or one of the strings `"nan"`, `"inf"`, `"-inf"`.

        The tolerances are those of the case's own profile and dtype (spec/SPEC.md §5, model
        `\(ToleranceModel.name)`). Under another profile the expected running variance can differ: use
        `bnspec audit --profile P`, which re-targets the case (spec/AUDIT.md §1).

        With NumPy alone: `pip install ./tools/python`, then `python -m bnspec.check GOLDEN RESULTS`, with
        `RESULTS/<case id>/<out>.npy` (and `error.txt` for a refusal), as `bnspec export` lays them out.

        """
    }
}
