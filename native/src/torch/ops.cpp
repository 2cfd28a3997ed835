#include "torch/ops.h"

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/torch.h>

#include "core/context.h"
#include "core/error.h"
#include "core/validate.h"

namespace cdas::torch_ops {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

int32_t dtype_of(const at::Tensor& t, const char* name) {
    switch (t.scalar_type()) {
        case at::kFloat: return CDAS_DTYPE_F32;
        case at::kBFloat16: return CDAS_DTYPE_BF16;
        case at::kHalf: return CDAS_DTYPE_F16;
        default:
            fail(CDAS_STATUS_UNSUPPORTED, std::string(name) + " must be float, bfloat16 or half, got " +
                                              std::string(c10::toString(t.scalar_type())));
    }
}

void require_shape(const at::Tensor& t, at::IntArrayRef shape, const char* name) {
    if (t.sizes() != shape)
        fail(CDAS_STATUS_INVALID_ARGUMENT, std::string(name) + " must have shape " + c10::str(shape) + ", got " +
                                               c10::str(t.sizes()));
}

void require_device(const at::Tensor& t, const at::Device& device, const char* name) {
    if (t.defined() && t.device() != device)
        fail(CDAS_STATUS_INVALID_ARGUMENT, std::string(name) + " is on " + t.device().str() + ", expected " + device.str());
}

cdas_context& context_for(const at::Device& device, cdas_context* given) {
    if (device.is_cpu()) {
        if (given && context_is_cuda(*given))
            fail(CDAS_STATUS_INVALID_ARGUMENT, "a CUDA context was given for CPU tensors");
        return given ? *given : context_default_cpu();
    }
    if (!device.is_cuda()) fail(CDAS_STATUS_UNSUPPORTED, "tensors on " + device.str() + " are not supported");
    int32_t index = device.has_index() ? device.index() : 0;
    if (given) {
        if (!context_is_cuda(*given) || given->options.device_index != index)
            fail(CDAS_STATUS_INVALID_ARGUMENT, "the given context is not a CUDA context of " + device.str());
        return *given;
    }
    static std::mutex mutex;
    static std::map<int32_t, cdas_context*> contexts;  // leaked: live as long as the process
    std::lock_guard<std::mutex> lock(mutex);
    cdas_context*& slot = contexts[index];
    if (!slot) {
        // No stream here: every call first moves the context to torch's current stream of the
        // device (cuda_call below). check_inputs stays 0: no host synchronisation, so the ops
        // work under torch.cuda.stream(...) and in CUDA graph capture.
        cdas_context_options o{};
        o.device_type = CDAS_DEVICE_CUDA;
        o.device_index = index;
        slot = context_create(o).release();
    }
    return *slot;
}

// Runs one libcdas call on a CUDA context on torch's current CUDA stream of the context's device
// (what torch.cuda.stream(...) and graph capture set), never synchronising. The stream switch and
// the call happen under one lock, so concurrent callers on different streams cannot move a
// shared context's stream between another caller's switch and its call. CPU contexts: just the
// call. (c10's CUDA device-guard implementation is registered at run time by libtorch_cuda; a
// CPU-only libtorch never has CUDA tensors, so it never gets here with one.)
template <class Call>
void cuda_call(cdas_context& context, Call&& call) {
    if (!context_is_cuda(context)) {
        call();
        return;
    }
    static std::mutex mutex;
    static std::map<cdas_context*, std::mutex> locks;  // one per context ever used; never erased
    std::mutex* context_lock;
    {
        std::lock_guard<std::mutex> guard(mutex);
        context_lock = &locks[&context];
    }
    std::lock_guard<std::mutex> guard(*context_lock);
    const c10::Device device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(context.options.device_index));
    const c10::Stream stream = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->getStream(device);
    context_set_cuda_stream(context, stream.native_handle());
    call();
}

// Errors inside autograd functions surface as c10::Error, which is what torch users catch.
template <class Body>
auto with_torch_errors(Body&& body) -> decltype(body()) {
    try {
        return body();
    } catch (const error& e) {
        TORCH_CHECK(false, e.what());
    }
}

at::Tensor as_mask(const at::Tensor& mask, int64_t rows, const at::Device& device) {
    if (!mask.defined()) return mask;
    require_device(mask, device, "mask");
    require_shape(mask, {rows}, "mask");
    return mask.to(at::kByte).contiguous();
}

const uint8_t* mask_ptr(const at::Tensor& mask) { return mask.defined() ? mask.data_ptr<uint8_t>() : nullptr; }

std::optional<at::Tensor> optional_tensor(const at::Tensor& t) {
    return t.defined() ? std::optional<at::Tensor>(t) : std::nullopt;
}

cdas_context* context_from(AutogradContext* ctx) {
    return reinterpret_cast<cdas_context*>(ctx->saved_data["context"].toInt());
}

struct dii_function : torch::autograd::Function<dii_function> {
    // Optional tensors travel as std::optional: Function::apply records every at::Tensor argument
    // as a graph input and cannot describe an undefined one.
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& directions,
                              const std::optional<at::Tensor>& source_arg,
                              const std::optional<at::Tensor>& values_arg, const at::Tensor& index,
                              const std::optional<at::Tensor>& mask_arg, int64_t context_bits,
                              const std::optional<at::Tensor>& set_arg, int64_t sets) {
        cdas_context& context = *reinterpret_cast<cdas_context*>(context_bits);
        const at::Tensor source = source_arg.value_or(at::Tensor());
        const at::Tensor values = values_arg.value_or(at::Tensor());
        const at::Tensor mask = mask_arg.value_or(at::Tensor());
        const at::Tensor example_set = set_arg.value_or(at::Tensor());
        at::Tensor h_out = at::empty_like(h);
        cpu::dii_args args = make_args(h, directions, source, values, index, mask, example_set, sets);
        validate_dii_forward(context, args, h_out.data_ptr());
        cuda_call(context, [&] { context_dii_forward(context, args, h_out.data_ptr(), nullptr); });
        ctx->save_for_backward({h, directions, source, values, index, mask, example_set});
        ctx->saved_data["context"] = context_bits;
        ctx->saved_data["sets"] = sets;
        return h_out;
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
        return with_torch_errors([&]() -> variable_list {
            auto saved = ctx->get_saved_variables();
            const at::Tensor &h = saved[0], &directions = saved[1], &source = saved[2], &values = saved[3];
            cdas_context& context = *context_from(ctx);
            at::Tensor grad_out = grad_outputs[0].to(h.scalar_type()).contiguous();
            at::Tensor grad_h = ctx->needs_input_grad(0) ? at::empty_like(h) : at::Tensor();
            at::Tensor grad_w = ctx->needs_input_grad(1) ? at::empty_like(directions) : at::Tensor();
            // needs_input_grad counts graph inputs, not arguments: with source absent (nullopt),
            // values is the third graph input.
            at::Tensor grad_v = values.defined() && ctx->needs_input_grad(2) ? at::empty_like(values) : at::Tensor();
            cpu::dii_args args =
                make_args(h, directions, source, values, saved[4], saved[5], saved[6], ctx->saved_data["sets"].toInt());
            validate_dii_backward(context, args, grad_out.data_ptr());
            cuda_call(context, [&] {
                context_dii_backward(context, args, grad_out.data_ptr(), grad_h.defined() ? grad_h.data_ptr() : nullptr,
                                     grad_w.defined() ? grad_w.data_ptr<float>() : nullptr,
                                     grad_v.defined() ? grad_v.data_ptr<float>() : nullptr);
            });
            return {grad_h, grad_w, at::Tensor(), grad_v, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
        });
    }

    static cpu::dii_args make_args(const at::Tensor& h, const at::Tensor& directions, const at::Tensor& source,
                                   const at::Tensor& values, const at::Tensor& index, const at::Tensor& mask,
                                   const at::Tensor& example_set, int64_t sets) {
        return cpu::dii_args{dtype_of(h, "h"), h.size(0), h.size(1), directions.size(0) / sets,
                             source.defined() ? source.size(0) : values.size(0),
                             h.data_ptr(), directions.data_ptr<float>(),
                             source.defined() ? source.data_ptr() : nullptr,
                             values.defined() ? values.data_ptr<float>() : nullptr,
                             index.data_ptr<int32_t>(), mask_ptr(mask),
                             example_set.defined() ? example_set.data_ptr<int32_t>() : nullptr, sets};
    }
};

struct lm_head_jsd_function : torch::autograd::Function<lm_head_jsd_function> {
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x_student, const at::Tensor& x_teacher,
                              const at::Tensor& head, double softcap, const std::optional<at::Tensor>& mask_arg,
                              int64_t context_bits, bool want_grad) {
        cdas_context& context = *reinterpret_cast<cdas_context*>(context_bits);
        const at::Tensor mask = mask_arg.value_or(at::Tensor());
        auto f32 = x_student.options().dtype(at::kFloat);
        at::Tensor loss = at::empty({}, f32);
        at::Tensor grad = want_grad ? at::empty({x_student.size(0), x_student.size(1)}, f32) : at::Tensor();
        cpu::lm_head_jsd_args args{dtype_of(x_student, "x_student"), x_student.size(0), x_student.size(1),
                                   head.size(0), x_student.data_ptr(), x_teacher.data_ptr(), head.data_ptr(),
                                   float(softcap), mask_ptr(mask), 1.0f, loss.data_ptr<float>(), nullptr,
                                   want_grad ? grad.data_ptr<float>() : nullptr};
        validate_lm_head_jsd(context, args);
        cuda_call(context, [&] { context_lm_head_jsd(context, args); });
        ctx->save_for_backward({grad});
        ctx->saved_data["dtype"] = int64_t(x_student.scalar_type());
        return loss;
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
        at::Tensor grad = ctx->get_saved_variables()[0];
        at::Tensor scaled;
        if (grad.defined())
            scaled = (grad * grad_outputs[0]).to(at::ScalarType(ctx->saved_data["dtype"].toInt()));
        return {scaled, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    }
};

}  // namespace

at::Tensor dii(const at::Tensor& h_in, const at::Tensor& directions_in, const at::Tensor& source_in,
               const at::Tensor& values_in, const at::Tensor& example_index, const at::Tensor& mask_in,
               cdas_context* given) {
    return dii_sets(h_in, directions_in, 1, at::Tensor(), source_in, values_in, example_index, mask_in, given);
}

at::Tensor dii_sets(const at::Tensor& h_in, const at::Tensor& directions_in, int64_t sets, const at::Tensor& example_set_in,
                    const at::Tensor& source_in, const at::Tensor& values_in, const at::Tensor& example_index,
                    const at::Tensor& mask_in, cdas_context* given) {
    return with_torch_errors([&] {
        if (!h_in.defined() || h_in.dim() != 2) fail(CDAS_STATUS_INVALID_ARGUMENT, "h must be a [T, d] tensor");
        if (!directions_in.defined() || directions_in.dim() != 2)
            fail(CDAS_STATUS_INVALID_ARGUMENT, "directions must be an [r, d] tensor");
        if (sets < 1 || directions_in.size(0) % sets != 0)
            fail(CDAS_STATUS_INVALID_ARGUMENT, "directions must have sets x r rows (sets " + std::to_string(sets) +
                                                   "), got " + std::to_string(directions_in.size(0)));
        if (sets > 1 && !example_set_in.defined())
            fail(CDAS_STATUS_INVALID_ARGUMENT, "example_set is required with more than one direction set");
        if (source_in.defined() == values_in.defined())
            fail(CDAS_STATUS_INVALID_ARGUMENT, "give exactly one of source and values");
        const at::Device device = h_in.device();
        require_device(directions_in, device, "directions");
        require_device(source_in, device, "source");
        require_device(values_in, device, "values");
        require_device(example_index, device, "example_index");
        const int64_t rows = h_in.size(0), dim = h_in.size(1), rank = directions_in.size(0) / sets;
        at::Tensor h = h_in.contiguous();
        at::Tensor directions = directions_in.to(at::kFloat).contiguous();
        require_shape(directions, {sets * rank, dim}, "directions");
        at::Tensor source, values;
        if (source_in.defined()) {
            source = source_in.detach().to(h.scalar_type()).contiguous();
            if (source.dim() != 2 || source.size(1) != dim)
                fail(CDAS_STATUS_INVALID_ARGUMENT, "source must be [B, " + std::to_string(dim) + "], got " +
                                                       c10::str(source.sizes()));
        } else {
            values = values_in.to(at::kFloat).contiguous();
            if (values.dim() != 2 || values.size(1) != rank)
                fail(CDAS_STATUS_INVALID_ARGUMENT, "values must be [B, " + std::to_string(rank) + "], got " +
                                                       c10::str(values.sizes()));
        }
        require_shape(example_index, {rows}, "example_index");
        at::Tensor index = example_index.to(at::kInt).contiguous();
        at::Tensor mask = as_mask(mask_in, rows, device);
        at::Tensor example_set;
        if (example_set_in.defined()) {
            require_device(example_set_in, device, "example_set");
            const int64_t examples = source.defined() ? source.size(0) : values.size(0);
            require_shape(example_set_in, {examples}, "example_set");
            example_set = example_set_in.to(at::kInt).contiguous();
        }
        cdas_context& context = context_for(device, given);
        return dii_function::apply(h, directions, optional_tensor(source), optional_tensor(values), index,
                                   optional_tensor(mask), reinterpret_cast<int64_t>(&context),
                                   optional_tensor(example_set), example_set.defined() ? sets : int64_t(1));
    });
}

at::Tensor lm_head_jsd(const at::Tensor& x_student_in, const at::Tensor& x_teacher_in, const at::Tensor& head_in,
                       double softcap, const at::Tensor& mask_in, cdas_context* given) {
    return with_torch_errors([&] {
        if (!x_student_in.defined() || x_student_in.dim() != 2)
            fail(CDAS_STATUS_INVALID_ARGUMENT, "x_student must be a [T, d] tensor");
        if (!head_in.defined() || head_in.dim() != 2) fail(CDAS_STATUS_INVALID_ARGUMENT, "head must be a [V, d] tensor");
        const at::Device device = x_student_in.device();
        require_device(x_teacher_in, device, "x_teacher");
        require_device(head_in, device, "head");
        const int64_t rows = x_student_in.size(0), dim = x_student_in.size(1);
        at::Tensor x_student = x_student_in.contiguous();
        at::Tensor x_teacher = x_teacher_in.detach().to(x_student.scalar_type()).contiguous();
        at::Tensor head = head_in.detach().to(x_student.scalar_type()).contiguous();
        require_shape(x_teacher, {rows, dim}, "x_teacher");
        if (head.size(1) != dim)
            fail(CDAS_STATUS_INVALID_ARGUMENT, "head must be [V, " + std::to_string(dim) + "], got " +
                                                   c10::str(head.sizes()));
        at::Tensor mask = as_mask(mask_in, rows, device);
        cdas_context& context = context_for(device, given);
        bool want_grad = torch::GradMode::is_enabled() && x_student.requires_grad();
        return lm_head_jsd_function::apply(x_student, x_teacher, head, softcap, optional_tensor(mask),
                                           reinterpret_cast<int64_t>(&context), want_grad);
    });
}

}  // namespace cdas::torch_ops
