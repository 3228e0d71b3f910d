import ArgumentParser
import BNCore
import Foundation

/// `bnspec` — the command-line face of BNSpec. Each subcommand is thin: it parses
/// arguments, calls a library module, and prints. Errors become one line on stderr
/// and a non-zero exit status.
@main
struct BNSpec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bnspec",
        abstract: "The reference for Batch Normalization numerics: golden vectors, verification and audit.",
        subcommands: [Verify.self, AuditCommand.self, ExportCommand.self, Fingerprint.self, Accuracy.self, Bench.self, FoldCheck.self, Generate.self, Nist.self, LibraryHostCommand.self])

    /// Refuses arguments that are not UTF-8 (one line, exit 1) before parsing them.
    static func main() {
        do { try Preflight.argumentsAreUTF8() } catch let e as BNError {
            FileHandle.standardError.write(Data("bnspec: error: \(e.description)\n".utf8))
            Foundation.exit(1)
        } catch { Foundation.exit(1) }
        main(nil)
    }

    /// Runs `body`, turning any BNSpec error into a one-line message and exit code 1.
    static func run(_ body: () throws -> Void) throws {
        do { try body() } catch let e as BNError {
            FileHandle.standardError.write(Data("bnspec: error: \(e.description)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// Writes `value` as pretty, key-sorted JSON to stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = try enc.encode(value)
    print(String(decoding: data, as: UTF8.self))
}

/// Formats a table with left-aligned first column and right-aligned others.
func table(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
    func line(_ r: [String]) -> String {
        r.enumerated().map { i, s in
            let pad = String(repeating: " ", count: widths[i] - s.count)
            return i == 0 ? s + pad : pad + s
        }.joined(separator: "  ")
    }
    let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
    return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
}
