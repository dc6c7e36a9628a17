# A read-only attacker plugin (a stand-in for a Tesseract wrapper): it answers `text` for every
# CAPTCHA, so which hyper-parameter reached it shows in what it read. `fail` makes it raise the
# way a plugin with a missing dependency does.
from captchalab.attackers import Attacker, Reading, register_attacker
from captchalab.generator import Param


@register_attacker
class Constant(Attacker):
    name = "constant"
    description = "Answers the same text for every CAPTCHA."
    trainable = False
    params = (Param("text", str, "0000", help="the answer"), Param("fail", bool, False, help="raise when reading"))

    def read_prepared(self, batch):
        if self.hparams["fail"]:
            import pytesseract_is_not_installed  # noqa: F401
        return [Reading(self.hparams["text"], [1.0] * len(self.hparams["text"])) for _ in batch]
