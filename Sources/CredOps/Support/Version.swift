/// The credops version, shown by `--version` and sent as the User-Agent.
public enum CredOpsVersion {
    public static let current = "0.1.0"
}
