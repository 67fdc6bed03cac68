"""The soft Q-learning training loop: write prompts through the environment, score them once per
step, update the MLP.

One step: the policy writes N prompts on-policy through ``PromptVectorEnv`` (an action per token,
the written tokens read back from the observation), the environment scores all N against M
training examples with one reward call when they are complete, rewards are shaped (z-score over
the step's prompts, then a linear map), and the SQL loss updates the MLP (Adam, gradient
clipping) before the target network follows. The environment is the road every rollout takes,
so a gymnasium agent sees exactly what soft Q-learning sees. Every ``eval_every`` steps the
greedy prompt is scored on the dev examples (through a one-prompt environment); the best one is
kept, and at the end the best few are compared again with the best training samples (``selection``).
Checkpoints (MLP, target, optimiser, RNG states, step, best prompt, curve) are written atomically,
and ``resume`` continues bit-for-bit on CPU.

Each step logs where its time went: ``time/sample`` (policy), ``time/reward`` (the environment's
reward call; a weighted sum also logs ``time/<term>``) and ``time/update`` (loss, backward, Adam).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..checkpoints import CHECKPOINT_FILE, load_checkpoint, parameter_shapes, save_checkpoint
from ..config import ConfigError, RunConfig, option
from ..envs.prompt_env import PromptVectorEnv
from ..models import dtype_name
from ..policies import LMAdaptorPolicy, Rollout
from ..policies.sparsemax import sparsemax, tsallis_entropy
from ..rewards import Reward, as_reward, linear_map, term_scores, zscore_by_key
from ..selection import RESCORE_ON, SELECT_BY, PromptSelection, held_out
from .sql import LOSSES, TargetUpdater, sql_loss

# a run given neither --steps nor --max-minutes trains this many steps, or for this long if that comes first: on
# 16-shot data more steps overfit the training examples (SST-2: 407 steps in 7 minutes on 2 cores kept a prompt at
# 0.773 on test against 0.833 after 100; RESULTS.md), so a faster machine stops at the step count, a slower one on time
DEFAULT_STEPS = 100
DEFAULT_BUDGET_MINUTES = 7.0
LEAD_WINDOW = 10  # steps over which explore_gap measures the policy's lead over the behaviour policy
EXAMPLES_NAMED = {"dev+train": "dev and training examples", "held-out": "held-out dev examples", "train": "training examples"}


@dataclass
class SQLConfig(RunConfig):
    """Soft Q-learning of one run, on top of the run's length and seed. The defaults learn in about 100 steps
    on a small LM (the recipe ``rlprompt-paper`` has RLPrompt's: lr 5e-5, 16 prompts a step, rewards to 0-5)."""

    eval_every: int = option(10, "evaluate on the dev split every K steps (0: only at the end)", at_least=0,
                             why="the best prompt is chosen on dev every K steps")

    lr: float = option(1e-3, "Adam's learning rate of the MLP", above=0, why="a learning rate is a step size, e.g. 1e-3")
    prompts_per_step: int = option(8, "prompts sampled per step", at_least=1,
                                   why="each step samples this many prompts")
    examples_per_step: int = option(16, "training examples each prompt is scored on per step", at_least=1,
                                    why="each prompt is scored on this many training examples")
    max_grad_norm: float = option(5.0, "gradients are clipped to this norm", above=0)
    loss: str = option("mix", "soft Q-learning loss (mix: the mean of the others)", choices=LOSSES,
                       aliases=["--sql-loss"])
    target_update: str = option("polyak", "how the target network follows the MLP", choices=("polyak", "copy"))
    target_rate: float = option(1e-3, "Polyak rate of the target network", above=0, at_most=1)
    target_period: int = option(100, "steps between copies (--target-update copy)", at_least=1)
    zscore: bool = option(True, "standardise each step's rewards over its prompts before the linear map")
    reward_range: tuple[float, float] | None = option(
        (0.0, 1.0), "the (z-scored) reward's [OLD_MIN, OLD_MAX], mapped linearly onto --shaped-range",
        metavar=("OLD_MIN", "OLD_MAX"))
    shaped_range: tuple[float, float] = option((0.0, 20.0), "[NEW_MIN, NEW_MAX] of that map (RLPrompt: 0 5)",
                                               metavar=("NEW_MIN", "NEW_MAX"))
    checkpoint_every: int | None = option(None, "steps between checkpoints (when omitted: --eval-every)", at_least=1)
    select_by: str = option("reward", "the dev figure that picks the best prompt", choices=SELECT_BY)
    rescore_top: int = option(5, "at the end, the K best distinct dev prompts are scored again on the dev and "
                                 "training examples together and the best of them kept (1 with --rescore-samples 0: "
                                 "the best on dev)",
                              at_least=1, metavar="K")
    rescore_samples: int = option(10, "the M training samples with the best mean reward join that re-scoring "
                                      "(0: only dev prompts)", at_least=0, metavar="M",
                                  why="the sampled prompts with the best training reward are scored on dev and train")
    rescore_on: str = option("dev+train", "what that re-scoring scores on: the dev and training examples together, "
                                          "or the held-out ones (dev examples that are not training examples; "
                                          "dev + train when most of dev repeats train)", choices=RESCORE_ON,
                             why="a policy settled on few prompts has fitted them to the training examples")
    init_prompt: str | None = option(None, "warm start: fit the policy first so that its greedy prompt begins "
                                           "with TEXT (when omitted: no warm start)", metavar="TEXT")
    stratify_classes: bool = option(False, "each step's training examples hold every class equally often "
                                           "(round(--examples-per-step / classes) of each)")
    replay_updates: int = option(0, "more updates per step on prompts already scored, with the rewards they got "
                                    "(soft Q-learning is off-policy: an update costs a fraction of a reward call; "
                                    "0: one update a step)", at_least=0, metavar="K")
    replay_buffer: int = option(1, "the replayed prompts come from the last STEPS steps (1: the step's own prompts "
                                   "again; older steps' rewards were z-scored against other batches)",
                                at_least=1, metavar="STEPS")
    replay_best: int = option(0, "each step, the K prompts sampled so far with the best mean training score are "
                                 "scored again on the step's examples and join its update beside the new ones "
                                 "(0: none)", at_least=0, metavar="K",
                              why="the best prompts found are kept in every update, so the policy can settle on them")
    explore_gap: float | None = option(None, "with a behaviour policy (--explore-fraction), its share follows the "
                                             "policy's lead: as the policy's own prompts outscore the behaviour's "
                                             "on training accuracy by up to GAP (mean of the last 10 steps), the "
                                             "share falls linearly from --explore-fraction to one prompt a step "
                                             "(when omitted: the share stays fixed)", above=0, metavar="GAP",
                                       why="the behaviour policy writes more where the policy has not learned yet")
    explore_around: int = option(0, "each step, K of the prompts begin with a prefix (1 to --prompt-length - 1 "
                                    "tokens, drawn at random) of one of the K prompts sampled so far with the best "
                                    "mean training score, and the policy writes the rest (0: none)",
                                 at_least=0, metavar="K",
                                 why="a search around the best prompts found, beside the policy's own samples")

    def check(self) -> None:
        if self.explore_around and self.prompt_length < 2:
            raise ConfigError("explore_around", "continues prefixes of the best prompts, and a 1-token prompt has "
                                                "none: pass --prompt-length 2 or more, or leave --explore-around out")
        if self.explore_around > self.prompts_per_step:
            raise ConfigError("explore_around", f"{self.explore_around} prompts a step begin with a best prompt's "
                                                f"prefix, more than the {self.prompts_per_step} sampled: lower it or "
                                                "raise --prompts-per-step")
        if self.prompt_length < 1:
            raise ConfigError("prompt_length", f"must be at least 1, got {self.prompt_length}: a prompt needs at "
                                               "least one token")
        if self.zscore and self.prompts_per_step < 2:
            raise ConfigError("prompts_per_step", f"{self.prompts_per_step} with z-scores gives every prompt the "
                              "shaped reward 0, so nothing is learned: sample at least 2 prompts per step, or pass "
                              "--no-zscore")

    @property
    def max_seconds(self) -> float | None:
        return None if self.max_minutes is None else self.max_minutes * 60


@dataclass
class StepResult:
    step: int
    logs: dict = field(default_factory=dict)


class SQLTrainer:
    """Trains ``policy.mlp`` against ``reward``; ``train_data``/``dev_data`` are column dicts passed to the reward.

    ``train_data`` of M rows is sub-sampled to ``examples_per_step`` rows per step; ``None`` gives
    the reward an empty batch (rewards that need no examples). The policy's MLP is re-initialised
    from ``config.seed``, so a run depends on its seed alone.
    """

    def __init__(self, policy: LMAdaptorPolicy, reward: Reward | Callable, config: SQLConfig,
                 train_data: dict | None = None, dev_data: dict | None = None,
                 output_dir: str | Path | None = None, method: str = "rlprompt"):
        if config.steps is None and config.max_minutes is None:  # neither given: the default run length
            config = dataclasses.replace(config, steps=DEFAULT_STEPS, max_minutes=DEFAULT_BUDGET_MINUTES)
        self.policy, self.reward, self.config = policy, as_reward(reward), config
        self.method = method  # the agent's name, recorded in checkpoints
        self.train_data, self.dev_data = train_data or {}, dev_data
        self.output_dir = Path(output_dir) if output_dir is not None else None
        tokenizer, length = policy.lm.tokenizer, config.prompt_length
        stratify = "label" if config.stratify_classes and "label" in self.train_data else None
        self.env = PromptVectorEnv(config.prompts_per_step, self.reward, tokenizer, length,
                                   vocab_size=policy.vocab_size, data=self.train_data,
                                   examples_per_episode=config.examples_per_step, stratify_by=stratify)
        self.env.reset(seed=config.seed)  # seeds the environment's draws of training examples
        self.eval_env = PromptVectorEnv(1, self.reward, tokenizer, length, vocab_size=policy.vocab_size,
                                        data=self.dev_data if self.dev_data is not None else self.train_data)
        if config.explore_gap is not None and not policy.explore_fraction:
            raise ConfigError("explore_gap", "follows a behaviour policy's share, and this policy has none: pass "
                                             "--explore-fraction (e.g. 0.5 --explore-with lm) as well")
        policy.reset_mlp(seed=config.seed)
        policy.explore_share = policy.explore_fraction  # explore_gap moves it from there, step by step
        self.warm_start_steps = self._warm_start(config.init_prompt)
        self.target = policy.target_mlp()
        self.optimizer = torch.optim.Adam(policy.mlp.parameters(), lr=config.lr)
        self.updater = TargetUpdater(config.target_update, config.target_rate, config.target_period)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.updates = 0  # optimiser updates: one a step, plus the replayed ones
        # a step's (token ids [N, L], hidden states [N, L, d], shaped rewards [N]) for replay_updates
        self.replayed: deque = deque(maxlen=config.replay_buffer)
        self.elapsed = 0.0  # training seconds so far, over every process that resumed this run
        self.selection = PromptSelection(config.select_by, config.rescore_top, config.rescore_samples,
                                         keep_samples=bool(config.replay_best or config.explore_around))
        self.curve: list[dict] = []
        self.on_best: Callable[[dict], None] | None = None  # called with each new best dev result
        self.on_log: Callable[[dict], None] | None = None  # called with each curve row (e.g. a tracker's log_row)

    def _warm_start(self, text: str | None) -> int:
        if not text:
            return 0
        ids = self.policy.lm.tokenizer.encode(text, add_special_tokens=False)
        if not ids or len(ids) > self.config.prompt_length:
            raise ConfigError("init_prompt", f"{text!r} is {len(ids)} tokens of the policy LM; it needs between 1 "
                                             f"and --prompt-length ({self.config.prompt_length})")
        return self.policy.warm_start(ids)

    # ------------------------------------------------------------------ one step

    def shape(self, scores: torch.Tensor) -> torch.Tensor:
        """Z-scores over the step's prompts, then the linear map (RLPrompt's order)."""
        if self.config.zscore:
            scores = zscore_by_key(scores)
        if self.config.reward_range is not None:
            scores = linear_map(scores, self.config.reward_range, self.config.shaped_range)
        return scores

    def write_prompts(self, env: PromptVectorEnv, *, greedy: bool = False,
                      prefixes: list[list[int]] = ()) -> tuple[Rollout, torch.Tensor, dict]:
        """One round of ``env``: the policy writes a prompt per sub-environment, token by token (the first
        ``len(prefixes)`` beginning with those tokens).

        Returns the rollout, the raw scores ``[N]`` and the last step's info (texts, reward logs),
        with ``time/sample`` and ``time/reward`` added.
        """
        started = time.perf_counter()
        obs, _ = env.reset()
        writer = self.policy.writer(env.num_envs, generator=self.generator, greedy=greedy, prefixes=prefixes)
        reward_seconds = 0.0
        for _ in range(self.config.prompt_length):
            actions = writer.choose()
            before = time.perf_counter()
            obs, scores, terminated, _, info = env.step(actions.cpu().numpy())
            reward_seconds += time.perf_counter() - before
            if not terminated.all():
                writer.feed(torch.from_numpy(obs["token_ids"][:, obs["length"][0] - 1]))
        info["time/reward"] = reward_seconds
        info["time/sample"] = time.perf_counter() - started - reward_seconds
        return writer.rollout(), torch.as_tensor(scores, dtype=torch.float32), info

    def update(self, rollout: Rollout, scores: torch.Tensor) -> dict:
        """One on-policy soft Q-learning step of the MLP from a rollout and its raw scores; returns the loss logs."""
        logs = self.gradient_step(rollout, self.shape(scores.float()))
        self.step += 1
        return logs

    def gradient_step(self, rollout: Rollout, rewards: torch.Tensor) -> dict:
        """One optimiser update of the MLP from a rollout and its shaped rewards ``[N]``; the target follows."""
        cfg = self.config
        rewards = rewards.to(rollout.hidden.device)
        logits = self.policy.rollout_q_values(rollout)  # [N, L, V], with grad
        with torch.no_grad():
            target_logits = self.policy.rollout_q_values(rollout, mlp=self.target)
        prior_rewards = self.policy.prior_rewards(rollout)
        loss, loss_logs = sql_loss(logits, target_logits, rollout.token_ids, rewards, cfg.loss, prior_rewards,
                                   entropy=self.policy.entropy)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.mlp.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        self.updater(self.target, self.policy.mlp, self.updates)
        logs = {"loss": float(loss.detach()), "grad_norm": float(grad_norm),
                **entropy_logs(logits.detach(), self.policy.entropy), **loss_logs}
        if prior_rewards is not None:
            logs["prior/log_prob"] = float(prior_rewards.sum(-1).mean()) / self.policy.prior_weight
        return logs

    def train_step(self) -> StepResult:
        if self.config.explore_gap is not None:  # set before writing: the step's logs split its rows by writer
            self.policy.explore_share = behaviour_share(self.policy.explore_fraction, policy_lead(self.curve),
                                                        self.config.explore_gap, self.config.prompts_per_step)
        prefixes = self.best_prefixes()
        rollout, scores, info = self.write_prompts(self.env, prefixes=prefixes)
        logs = {"reward": float(scores.mean()), "reward/max": float(scores.max()),
                "sample": str(info["text"][int(scores.argmax())]), **_step_means(info)}
        if prefixes:
            logs.update(around_logs(info, scores, len(prefixes)))
        if self.config.explore_gap is not None:
            logs["explore/share"] = self.policy.explore_share
        logs.update(writer_logs(info, scores, self.policy.explorers(len(scores)).cpu().numpy()))
        if self.config.replay_best:
            rollout, scores, best_logs = self.join_best_samples(rollout, scores)
            logs.update(best_logs)
        started = time.perf_counter()
        logs.update(self.update(rollout, scores))
        if self.config.replay_updates:
            self.replayed.append((rollout.token_ids, rollout.hidden, self.shape(scores.float())))
            logs.update(self.replay())
        logs["time/update"] = time.perf_counter() - started
        self.selection.tally(rollout.token_ids, scores, self.step)
        return StepResult(self.step, logs)

    def best_prefixes(self) -> list[list[int]]:
        """``explore_around``'s prefixes for this step: of each of the best prompts sampled so far (by mean
        training score), its first 1 to L-1 tokens, the length drawn uniformly; none before anything was sampled.

        Where the policy samples a good prompt once and moves on (TREC, Subj), its neighbours (the same opening,
        a different ending) are searched every step, and the policy learns from them off-policy."""
        best = self.selection.best_sampled(self.config.explore_around) if self.config.explore_around else []
        if not best:
            return []
        lengths = torch.randint(1, self.config.prompt_length, (len(best),), generator=self.generator)
        return [list(ids[:length]) for ids, length in zip(best, lengths.tolist())]

    def join_best_samples(self, rollout: Rollout, scores: torch.Tensor) -> tuple[Rollout, torch.Tensor, dict]:
        """The step's rollout and raw scores with the ``replay_best`` best prompts sampled so far appended, scored
        on the step's own examples.

        With many classes the policy samples a good prompt once and rarely again, so its one reward moves the
        policy little. Scored afresh beside the new prompts, the best ones found are z-scored against the same
        examples (unlike a stale replay), take part in every update as off-policy rows, and their mean training
        score sharpens with each step, so a prompt that was lucky once drops out."""
        chosen = self.selection.best_sampled(self.config.replay_best, exclude=rollout.token_ids.tolist())
        if not chosen:
            return rollout, scores, {}
        started = time.perf_counter()
        _, best_scores, _ = self.env.scorer.score(np.array(chosen), self.env.batch)
        replayed = self.policy.teacher_forcing(torch.tensor(chosen))
        best_scores = torch.as_tensor(best_scores, dtype=torch.float32)
        return (Rollout.cat([rollout, replayed]), torch.cat([scores, best_scores]),
                {"replay/best_reward": float(best_scores.mean()), "time/replay_best": time.perf_counter() - started})

    def replay(self) -> dict:
        """``replay_updates`` off-policy updates, each on ``prompts_per_step`` prompts drawn (with replacement) from
        the last ``replay_buffer`` steps, with the shaped rewards they got then.

        Soft Q-learning's consistency losses hold for prompts of any behaviour policy, and every scored prompt
        is already paid for. The frozen LM's hidden states were kept with the prompts, so an update costs the
        MLP and the head alone, a fraction of a reward call: each reward call buys several updates."""
        token_ids, hidden, rewards = (torch.cat(parts) for parts in zip(*self.replayed))
        losses = []
        for _ in range(self.config.replay_updates):
            rows = torch.randint(len(token_ids), (self.config.prompts_per_step,), generator=self.generator)
            losses.append(self.gradient_step(self.policy.replayed_rollout(token_ids[rows], hidden[rows]),
                                             rewards[rows])["loss"])
        return {"replay/loss": float(np.mean(losses))}

    # ------------------------------------------------------------------ evaluation

    def greedy_prompt(self) -> tuple[str, list[int]]:
        ids = self.policy.greedy(self.config.prompt_length).token_ids[0].tolist()
        return self.policy.decode([ids])[0], ids

    def evaluate(self) -> dict:
        """Score the greedy prompt with the reward on the dev examples (train examples when there is no dev)."""
        rollout, scores, info = self.write_prompts(self.eval_env, greedy=True)
        result = {"step": self.step, "text": str(info["text"][0]), "token_ids": rollout.token_ids[0].tolist(),
                  "reward": float(scores[0])}
        result.update({k: v for k, v in _step_means(info).items() if not k.startswith("time/")})
        return result

    def reselect(self) -> dict:
        """The selection's end-of-run choice (see ``selection``): the best dev prompts and training samples scored
        again on ``rescoring_data``."""
        scorer = self.eval_env.scorer
        on, data = self.rescoring_data()
        return self.selection.reselect(scorer.score, scorer.data, data, on=on)

    def rescoring_data(self) -> tuple[str, dict]:
        """Where the end-of-run re-scoring happens, and its examples. By default dev and train together (train
        alone without dev): every candidate trained on the training examples, and together they are at least
        twice as many as the 32 dev sentences. ``--rescore-on held-out`` takes the dev examples that are not
        training examples, when they are at least half of dev."""
        if self.config.rescore_on == "held-out":
            data = held_out(self.dev_data, self.train_data)
            if data is not None:
                return "held-out", data
        if self.dev_data is None:
            return "train", self.train_data
        return "dev+train", {name: list(self.dev_data.get(name, [])) + list(values)
                             for name, values in self.train_data.items()}

    @property
    def best(self) -> dict | None:
        """The kept result: the best dev result, after the end of the run the re-selected one."""
        return self.selection.best

    @best.setter
    def best(self, result: dict | None) -> None:
        self.selection.best = result

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict:
        return {"step": self.step, "mlp": self.policy.mlp.state_dict(), "target": self.target.state_dict(),
                "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
                "env_rng": self.env.np_random.bit_generator.state, "reward": self.reward.state_dict(),
                "elapsed": self.elapsed, **self.selection.state_dict(), "curve": self.curve,
                "updates": self.updates, "replayed": list(self.replayed), "config": self.config.to_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.step = state["step"]
        self.policy.mlp.load_state_dict(state["mlp"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.env.np_random.bit_generator.state = state["env_rng"]
        self.reward.load_state_dict(state["reward"])
        self.elapsed = state["elapsed"]
        self.selection.load_state_dict(state)
        self.curve = state["curve"]
        self.updates = state.get("updates", self.step)  # older checkpoints: one update a step
        self.replayed = deque(state.get("replayed", []), maxlen=self.config.replay_buffer)

    def save_checkpoint(self) -> Path:
        """Write ``checkpoint.pt`` atomically, keeping the one it replaces as ``checkpoint.prev.pt``."""
        return save_checkpoint(self.output_dir / CHECKPOINT_FILE, self.state_dict(), trainer_identity(self))

    def resume(self) -> bool:
        """Load the checkpoint in ``output_dir`` (the previous one if it is broken); False when there is none."""
        state = None if self.output_dir is None else load_checkpoint(
            self.output_dir / CHECKPOINT_FILE, trainer_identity(self), map_location=self.policy.lm.device)
        if state is not None:
            self.load_state_dict(state)
        return state is not None

    # ------------------------------------------------------------------ the loop

    def out_of_time(self) -> bool:
        return self.config.max_seconds is not None and self.elapsed >= self.config.max_seconds

    def train(self, *, progress: bool = True, stop_after: int | None = None) -> dict:
        """Run until ``config.steps`` (or ``stop_after`` more steps, or ``config.max_minutes``; ``steps`` None: until
        the time budget is spent); returns the best dev result. A run stopped by the clock scores its greedy prompt
        at the step it stopped."""
        cfg = self.config
        every = cfg.checkpoint_every or cfg.eval_every
        steps = math.inf if cfg.steps is None else cfg.steps  # None: until the time budget runs out
        last = steps if stop_after is None else min(steps, self.step + stop_after)
        bar = tqdm(total=cfg.steps, initial=self.step, desc="rlprompt", unit="step", disable=not progress)
        started, offset = time.time(), self.elapsed
        while self.step < last and not self.out_of_time():
            result = self.train_step()
            row = {"step": result.step, **result.logs}
            self.elapsed = offset + time.time() - started
            scheduled = cfg.eval_every and (self.step % cfg.eval_every == 0 or self.step == cfg.steps)
            if scheduled or (self.out_of_time() and (cfg.eval_every or self.best is None)):
                dev = self.evaluate()
                row.update({f"dev/{k}": v for k, v in dev.items() if k not in ("step", "token_ids")})
                if self.selection.observe(dev) and self.on_best is not None:
                    self.on_best(dev)
                bar.write(f"step {self.step}: dev {_brief(dev)}  best {self.best['text']!r}")
                self.elapsed = offset + time.time() - started
            row["time"] = self.elapsed
            self.curve.append(row)
            if self.on_log is not None:
                self.on_log(row)
            bar.set_postfix({k: f"{v:.3g}" for k, v in _console_figures(result.logs).items() if k != "sample"})
            bar.update(1)
            due = (every and self.step % every == 0) or self.step == last or self.out_of_time()
            if self.output_dir is not None and due:
                self.save_checkpoint()
        bar.close()
        if self.best is None:
            self.selection.observe(self.evaluate())
        if self.selection.reselects and (self.step >= steps or self.out_of_time()) and "selection" not in self.best:
            self.best = self.reselect()
            if "selection" in self.best:
                selection = self.best["selection"]
                sources = [c["source"] for c in selection["candidates"]]
                print(f"kept {self.best['text']!r} of the {sources.count('dev')} best dev prompts and "
                      f"{sources.count('sampled')} best training samples, scored again on {selection['examples']} "
                      f"{EXAMPLES_NAMED[selection['on']]} (best on dev alone: {selection['dev_best']!r})")
                if self.on_best is not None:
                    self.on_best(self.best)
                if self.output_dir is not None:
                    self.save_checkpoint()
        return self.best


def trainer_identity(trainer: SQLTrainer) -> dict:
    """What a checkpoint must match to be resumed by ``trainer`` (see ``checkpoints``)."""
    task_lm = getattr(trainer, "task_lm", None)
    return {"method": trainer.method, "policy_model": trainer.policy.lm.spec, "task_model": getattr(task_lm, "spec", None),
            "prompt_length": trainer.config.prompt_length, "mlp_shapes": parameter_shapes(trainer.policy.mlp),
            "dtype": dtype_name(trainer.policy.lm.dtype)}


@torch.no_grad()
def entropy_logs(logits: torch.Tensor, kind: str = "shannon") -> dict:
    """The policy's entropy at the visited states (collapse shows up here first): Shannon's, or under
    the Tsallis regulariser ``entropy`` = ``W(pi)`` beside ``entropy/shannon`` of the same sparse policy
    and ``policy/support``, the mean number of tokens with nonzero probability."""
    if kind == "shannon":
        return {"entropy": float(-(logits.softmax(-1) * logits.log_softmax(-1)).nan_to_num().sum(-1).mean())}
    probs = sparsemax(logits)
    shannon = -(probs * probs.log()).nan_to_num().sum(-1).mean()  # 0 log 0 = 0
    return {"entropy": float(tsallis_entropy(probs).mean()), "entropy/shannon": float(shannon),
            "policy/support": float((probs > 0).sum(-1).float().mean())}


def _step_means(info: dict) -> dict:
    """The reward's logs in a vector environment's last-step info, as means over the sub-environments."""
    means = {}
    for key, value in info.items():
        if key.startswith("_") or key == "text":
            continue
        try:
            means[key] = float(np.mean(value))
        except (TypeError, ValueError):
            continue
    return means


def writer_logs(info: dict, scores: torch.Tensor, explorers: np.ndarray) -> dict:
    """With a behaviour policy (``explore_fraction``), the raw reward and the training accuracy of the prompts each
    writer wrote, ``*/policy`` and ``*/behaviour``: whether the policy's own samples beat the behaviour's is what
    says it has learned (the step's mean mixes the two)."""
    if not explorers.any() or explorers.all():
        return {}
    return row_group_logs(info, scores, {"policy": ~explorers, "behaviour": explorers})


def around_logs(info: dict, scores: torch.Tensor, count: int) -> dict:
    """The raw reward and training accuracy of the step's first ``count`` prompts, those that continued a best
    prompt's prefix (``explore_around``), beside the step's mean."""
    return row_group_logs(info, scores, {"around": np.arange(len(scores)) < count})


def row_group_logs(info: dict, scores: torch.Tensor, groups: dict[str, np.ndarray]) -> dict:
    """``reward/<group>`` and (where the reward reports it) ``accuracy/<group>``: the means over each group's rows."""
    columns = {"reward": scores.numpy()}
    if "accuracy/per_prompt" in info:
        columns["accuracy"] = np.asarray(info["accuracy/per_prompt"], dtype=float)
    return {f"{name}/{group}": float(values[rows].mean()) for name, values in columns.items()
            for group, rows in groups.items()}


def policy_lead(curve: list[dict], window: int = LEAD_WINDOW) -> float | None:
    """How far the policy's own prompts outscore the behaviour policy's over the last ``window`` steps of ``curve``:
    the mean difference of their training accuracies (of their raw rewards where the reward reports no accuracy);
    None before any step had both writers."""
    rows = [row for row in curve[-window:] if "reward/behaviour" in row]
    if not rows:
        return None
    name = "accuracy" if all("accuracy/behaviour" in row for row in rows) else "reward"
    return float(np.mean([row[f"{name}/policy"] - row[f"{name}/behaviour"] for row in rows]))


def behaviour_share(fraction: float, lead: float | None, gap: float, num_prompts: int) -> float:
    """The behaviour policy's share of the next step's prompts under ``explore_gap``: ``fraction`` while the policy
    has no lead (``lead`` None or at most 0), falling linearly to one prompt of ``num_prompts`` as the lead reaches
    ``gap``. One prompt is always kept, so the lead stays measured and the share can rise again."""
    share = fraction if lead is None or lead <= 0 else fraction * (1 - min(lead / gap, 1.0))
    return max(share, 1 / num_prompts)


def _console_figures(logs: dict) -> dict:
    """What the terminal shows of a step or a dev evaluation: the reward and beside it each term's mean score
    (``term_scores``), then accuracy, perplexity and loss. The trackers and the curve get every figure."""
    keys = ["reward", *term_scores(logs), "accuracy", "perplexity", "loss"]
    return {key: logs[key] for key in keys if key in logs}


def _brief(result: dict) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in _console_figures(result).items() if k != "loss") + f" {result['text']!r}"
