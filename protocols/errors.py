"""Error type shared by every validator of the contract."""


# How the reason of an error from a decoder's safety net starts: an exception the decoder did not
# expect (a bug to fix), turned into the contract's error so that nothing else ever leaves a decoder.
UNEXPECTED = "unexpected "


class ContractError(ValueError):
    """A payload broke the contract.

    `path` names the bad field the way a person would point at it
    (`routes[2].hours[0].end`, `records[0].seq`, `sig`); `reason` says why.
    """

    def __init__(self, path, reason):
        super().__init__(path + ": " + reason if path else reason)
        self.path = path
        self.reason = reason
