"""Human studies: how well people solve the designs the attackers read.

- `records`: what one answer records, the append-only answer files and CSV import;
- `designs`: which design a dataset, a study cell or an attack report measured (the join key);
- `pool`: the study behind the page (items, assignment, tokens, scoring; no web code);
- `server`: the local web page (`captchalab humans`);
- `simulate`: simulated participants that take the page over HTTP (load tests, worked examples);
- `frontier`: human success and time beside the best attacker, per design, and the Pareto front.
"""
