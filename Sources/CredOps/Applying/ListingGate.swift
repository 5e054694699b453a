/// Keeps a run's own deletes from moving a paged listing under a read-back.
///
/// Many APIs page by offset (`?page=N`, or cursors that are offsets in disguise): a credential
/// deleted while a listing is between pages moves every later one a place forward, and the
/// listing skips one. A read-back after a lost create that skips the credential it looks for
/// takes it for never made, creates another, and leaves the first on the server with a secret
/// nobody has. So deletes and read-back listings of one environment never overlap: any number
/// of deletes at once, or any number of listings, and a waiting listing goes before deletes
/// that come after it (read-backs are rare; they must not starve).
actor ListingGate {
    private var deleting = 0
    private var listing = 0
    private var waitingDeletes: [CheckedContinuation<Void, Never>] = []
    private var waitingListings: [CheckedContinuation<Void, Never>] = []

    func enterDelete() async {
        if listing == 0 && waitingListings.isEmpty {
            deleting += 1
            return
        }
        await withCheckedContinuation { waitingDeletes.append($0) }
    }

    func leaveDelete() {
        deleting -= 1
        guard deleting == 0, !waitingListings.isEmpty else { return }
        listing += waitingListings.count
        for waiter in waitingListings { waiter.resume() }
        waitingListings = []
    }

    func enterListing() async {
        if deleting == 0 {
            listing += 1
            return
        }
        await withCheckedContinuation { waitingListings.append($0) }
    }

    func leaveListing() {
        listing -= 1
        guard listing == 0, waitingListings.isEmpty, !waitingDeletes.isEmpty else { return }
        deleting += waitingDeletes.count
        for waiter in waitingDeletes { waiter.resume() }
        waitingDeletes = []
    }
}
